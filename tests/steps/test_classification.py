"""linear_probe, finetune and accuracy_vs_k, checked against numbers computed here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .conftest import codes

CS = [0.01, 1.0]  # the study's linear_probe Cs


def probe(features, splits) -> tuple[float, float]:
    """(best C on validation, its test accuracy): logistic regression on features centred and
    scaled by one overall training std, as the probe documents."""
    tr, va, te = (np.asarray(features(splits[s]), dtype=np.float64) for s in ("train", "val", "test"))
    mean, scale = tr.mean(0), max(float((tr - tr.mean(0)).std()), 1e-12)
    tr, va, te = ((a - mean) / scale for a in (tr, va, te))
    best = None
    for C in CS:
        with warnings.catch_warnings():  # 50 iterations, as the study's probe: a fixed budget
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(C=C, max_iter=50).fit(tr, splits["train"].y.numpy())
        val = (clf.predict(va) == splits["val"].y.numpy()).mean()
        if best is None or val > best[0]:
            best = (val, C, (clf.predict(te) == splits["test"].y.numpy()).mean())
    return best[1], best[2]


@pytest.mark.parametrize("run", ["raw-pixels", "ks-k4", "vae"])
def test_probe_accuracy_matches_a_logistic_regression_fitted_here(every_step, run):
    s = every_step
    if run == "raw-pixels":
        C, acc = probe(lambda d: d.x.flatten(1).numpy(), s.splits)
    else:
        C, acc = probe(lambda d: codes(s.models[run], d.x).numpy(), s.splits)
    e = s.runs[run]
    assert (e["probe_C"], e["probe_accuracy"]) == (C, pytest.approx(acc, abs=1e-12))
    test_y = s.splits["test"].y.numpy()
    n = {c: int((test_y == i).sum()) for i, c in enumerate(s.splits["test"].class_names)}
    # Per-class accuracies weighted by class size give back the overall accuracy.
    assert sum(e["probe_per_class_accuracy"][c] * k for c, k in n.items()) / len(test_y) == pytest.approx(acc)


@pytest.mark.parametrize(("run", "code"), [("ks-k4", 32), ("vae", 2), ("conv", 16)])
def test_finetune_numbers_agree_with_its_confusion_matrix(every_step, run, code):
    e, test = every_step.runs[run], every_step.splits["test"]
    cm = np.array(e["confusion"])
    assert cm.sum() == len(test) and (cm.sum(1) == np.bincount(test.y.numpy(), minlength=8)).all()
    assert e["finetune_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert [e["per_class_accuracy"][c] for c in test.class_names] == pytest.approx(cm.diagonal() / cm.sum(1))
    assert e["finetune_history"][-1]["test_accuracy"] == pytest.approx(e["finetune_accuracy"])
    assert e["finetune_network"] == f"64-{code}-10-8"  # 8×8 pixels, code, head [10], 8 classes
    assert f"confusion-{run}" in every_step.figures


def test_accuracy_vs_k_places_the_k_sparse_runs_at_their_k(every_step):
    assert [every_step.runs[f"ks-k{k}"]["k"] for k in (4, 8)] == [4, 8]
    assert "k" not in every_step.runs["vae"]
    assert "accuracy_vs_k" in every_step.figures
