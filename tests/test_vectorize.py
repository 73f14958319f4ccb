"""train.vectorize through the engine: stack groups in the plan, the same folder and numbers as
runs trained alone (within the stated 1e-5), a killed vectorized study resumes to them."""

from __future__ import annotations

import json

import pytest

from aelab.config import load_study
from aelab.plan import stack_groups
from aelab.runner import resume_study, run_study

from .test_runner import InterruptAfter

STUDY = """
name = "seeds"
seed = [0, 1, 2]
[data]
dataset = "digits"
[train]
epochs = 4
batch_size = 32
learning_rate = 3e-3
vectorize = "{vectorize}"
early_stopping = {{ monitor = "val_loss", patience = 1, min_delta = 5e-3 }}
[[models]]
name = "dense"
model = "stacked"
params = {{ hidden = [32, 8], activity_l1 = [0.0, 1e-3] }}
[[models]]
name = "kl"
model = "sparse-kl"
params = {{ hidden = [16] }}
train = {{ vectorize = "off" }}
[[steps]]
kind = "loss_curves"
"""


def load(tmp_path, vectorize):
    path = tmp_path / f"seeds-{vectorize}.toml"
    path.write_text(STUDY.format(vectorize=vectorize))
    return load_study(str(path))


def runs(folder):
    return {r["name"]: r for r in json.loads((folder / "metrics.json").read_text())["runs"]}


def assert_close(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        ra, rb = a[name], b[name]
        assert (ra["status"], ra["epochs_run"], ra["best_epoch"]) == (rb["status"], rb["epochs_run"], rb["best_epoch"])
        for ea, eb in zip(ra["history"], rb["history"], strict=True):
            for key in ("train_loss", "val_loss", "train_penalty"):
                assert ea[key] == pytest.approx(eb[key], abs=1e-5), (name, ea["epoch"], key)
        assert ra["test_loss"] == pytest.approx(rb["test_loss"], abs=1e-5)


def test_groups_are_the_runs_alike_but_for_seed_rate_noise_and_member_params(tmp_path):
    groups = [[r.name for r in g] for g in stack_groups(load(tmp_path, "on").runs)]
    dense = [f"dense-activity_l1_{a}-seed{s}" for a in ("0", "0.001") for s in range(3)]
    assert groups == [dense, ["kl-seed0"], ["kl-seed1"], ["kl-seed2"]]  # kl: vectorize = "off"
    assert all(len(g) == 1 for g in stack_groups(load(tmp_path, "off").runs))


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alone")
    return run_study(load(tmp, "off"), out=tmp / "off", quiet=True)


def test_a_vectorized_study_gives_the_numbers_of_runs_trained_alone(tmp_path, alone):
    out = run_study(load(tmp_path, "on"), out=tmp_path / "on", quiet=True)
    stacked, single = runs(out), runs(alone)
    assert_close(single, stacked)
    assert len({r["epochs_run"] for r in stacked.values()}) > 1  # members left the stack at different epochs
    assert stacked["dense-activity_l1_0-seed0"]["stacked_with"][:2] == ["dense-activity_l1_0-seed1", "dense-activity_l1_0-seed2"]
    assert single["dense-activity_l1_0-seed0"]["stacked_with"] == [] and stacked["kl-seed0"]["stacked_with"] == []
    assert {p.name for p in (out / "checkpoints").iterdir()} == {p.name for p in (alone / "checkpoints").iterdir()}


def test_a_study_killed_mid_group_resumes_to_the_same_numbers(tmp_path, alone):
    with pytest.raises(KeyboardInterrupt):
        run_study(load(tmp_path, "on"), out=tmp_path / "run", quiet=True,
                  listeners=[InterruptAfter("dense-activity_l1_0.001-seed1", 2)])
    part = tmp_path / "run.incomplete"
    states = {p.stem for p in (part / "resume").iterdir()}
    assert "dense-activity_l1_0-seed0" in states  # every member saved its epoch, not only the killed one
    out = resume_study(part, quiet=True)
    assert_close(runs(alone), runs(out))


def test_auto_decides_by_a_timing_and_gives_the_same_numbers(tmp_path, alone):
    out = run_study(load(tmp_path, "auto"), out=tmp_path / "auto", quiet=True)
    assert_close(runs(alone), runs(out))
