"""novelty: AUROC of reconstruction errors recomputed with scikit-learn; its load-time checks."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from aelab.config import load_study
from aelab.datasets import load_dataset
from aelab.errors import ConfigError

from .conftest import STUDY


@pytest.mark.parametrize("run", ["ks-k4", "vae", "conv"])
def test_auroc_matches_sklearn_on_mse_per_pixel(every_step, run):
    full = load_dataset("digits")  # the study's dataset, unfiltered: digits 8 and 9 are new
    model = every_step.models[run]
    with torch.inference_mode():
        err = (model(full.x) - full.x).square().flatten(1).mean(1).numpy()
    y = full.y.numpy()
    novel = y >= 8
    e = every_step.runs[run]
    assert e["novelty_score"] == "mse"
    assert e["auroc"] == pytest.approx(roc_auc_score(novel, err), abs=1e-6)
    for c in (8, 9):
        keep = ~novel | (y == c)
        assert e["auroc_per_class"][str(c)] == pytest.approx(roc_auc_score(y[keep] == c, err[keep]), abs=1e-6)
    assert set(e["auroc_per_class"]) == {"8", "9"}
    # Each unseen-vs-seen pair belongs to one unseen class: the overall AUROC is their weighted mean.
    n8, n9 = (y == 8).sum(), (y == 9).sum()
    per = e["auroc_per_class"]
    assert e["auroc"] == pytest.approx((n8 * per["8"] + n9 * per["9"]) / (n8 + n9), abs=1e-9)
    assert f"novelty-{run}" in every_step.figures


def test_novelty_needs_classes_left_out_of_training(tmp_path):
    (tmp_path / "s.toml").write_text(STUDY.replace("classes = [0, 1, 2, 3, 4, 5, 6, 7]\n", ""))
    with pytest.raises(ConfigError, match=r"^steps\[12\] \(novelty\) needs classes left out of training"):
        load_study(str(tmp_path / "s.toml"))


def test_novelty_scores_only_a_dataset_with_the_training_classes(tmp_path):
    (tmp_path / "s.toml").write_text(STUDY.replace('kind = "novelty"', 'kind = "novelty"\ndataset = "fashion-mnist"'))
    with pytest.raises(ConfigError, match=r"whose classes do not include the training classes 0, 1"):
        load_study(str(tmp_path / "s.toml"))
