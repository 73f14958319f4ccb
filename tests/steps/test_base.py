"""The step contract: declarations, and the load-time checks of a study's [[steps]]."""

from __future__ import annotations

import pytest

from aelab.config import load_study
from aelab.errors import ConfigError
from aelab.registry import STEPS
from aelab.steps import StepInfo

STUDY = """
name = "requires"
[data]
dataset = "digits"
split = [4, 1, 1]
[train]
epochs = 1
[[models]]
name = "ks"
model = "k-sparse"
params = {{ hidden = [16], k = 4 }}
{steps}
"""


def study(tmp_path, *kinds: str):
    (tmp_path / "s.toml").write_text(STUDY.format(steps="".join(f'[[steps]]\nkind = "{k}"\n' for k in kinds)))
    return load_study(str(tmp_path / "s.toml"))


def test_every_step_is_registered_with_typed_info():
    assert all(isinstance(e.info, StepInfo) for e in STEPS.entries())
    assert STEPS.get("linear_probe").info.needs_labels and STEPS.get("linear_probe").info.needs_val
    assert STEPS.get("accuracy_vs_k").info.requires == ("probe_accuracy", "finetune_accuracy")


@pytest.mark.parametrize("before", [[], ["loss_curves", "clustering"]])
def test_accuracy_vs_k_without_a_probe_or_finetune_before_it_fails_at_load(tmp_path, before):
    i = len(before)
    with pytest.raises(ConfigError) as err:
        study(tmp_path, *before, "accuracy_vs_k", "linear_probe")
    assert str(err.value) == (
        f"steps[{i}] (accuracy_vs_k) reads probe_accuracy or finetune_accuracy from an earlier step, "
        f"but no step before it produces that; add finetune or linear_probe before steps[{i}].")


@pytest.mark.parametrize("first", ["linear_probe", "finetune"])
def test_accuracy_vs_k_after_a_probe_or_finetune_loads(tmp_path, first):
    assert [s.kind for s in study(tmp_path, first, "accuracy_vs_k").steps] == [first, "accuracy_vs_k"]


def test_a_step_that_needs_a_validation_split_fails_at_load_without_one(tmp_path):
    (tmp_path / "s.toml").write_text(STUDY.format(steps='[[steps]]\nkind = "linear_probe"\n')
                                     .replace("split = [4, 1, 1]", "split = [4, 1]"))
    with pytest.raises(ConfigError, match=r"^steps\[0\] \(linear_probe\) needs a validation split"):
        load_study(str(tmp_path / "s.toml"))
