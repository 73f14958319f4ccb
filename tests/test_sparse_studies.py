"""The sparse-codes and novelty studies end to end (--quick), and their load-time errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console

from aelab.config import load_study
from aelab.errors import ConfigError
from aelab.runner import run_study

from .conftest import needs_fashion


def _metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_sparse_codes_quick_runs_end_to_end(tmp_path):
    console = Console(record=True, file=io.StringIO(), width=120)
    folder = run_study(load_study("sparse-codes", quick=True), out=tmp_path / "x", console=console)
    m = _metrics(folder)
    runs = {e["name"]: e for e in m["runs"]}
    assert set(runs) == {"l1", "kl", "ksparse-k10", "ksparse-k25", "ksparse-k40", "ksparse-k70",
                         "raw-pixels"}
    classes = m["dataset"]["class_names"]
    # The test set's class sizes, from any run's confusion matrix (rows: true class).
    sizes = np.array(runs["l1"]["confusion"]).sum(1)
    for name, e in runs.items():
        # Per-class probe accuracies weighted by class size give back the overall accuracy.
        per_class = [e["probe_per_class_accuracy"][c] for c in classes]
        assert e["probe_accuracy"] == pytest.approx(np.dot(per_class, sizes) / sizes.sum())
        # The best matching of clusters to classes beats their mean over all matchings, 1/k.
        assert e["kmeans_acc"] >= 1 / len(classes) and 0 < e["kmeans_nmi"] < 1
        if name == "raw-pixels":
            assert "history" not in e and "finetune_accuracy" not in e
            continue
        # Overall and per-class accuracy, the confusion matrix and the last logged epoch agree.
        cm = np.array(e["confusion"])
        assert cm.sum() == m["dataset"]["splits"]["test"]
        assert e["finetune_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
        assert e["finetune_history"][-1]["test_accuracy"] == pytest.approx(e["finetune_accuracy"])
        assert [e["per_class_accuracy"][c] for c in classes] == pytest.approx(cm.diagonal() / cm.sum(1))
        assert len(e["finetune_history"]) == 2  # [quick.steps.finetune] epochs = 2
        assert e["finetune_network"] == "784-512-10-10"
        assert e["dead_units"] <= e["code_size"] == 512
    assert [runs[f"ksparse-k{k}"]["k"] for k in (10, 25, 40, 70)] == [10, 25, 40, 70]
    for k in (10, 25, 40, 70):  # encoding keeps alpha·k = 3k of the 512 units, no more
        assert runs[f"ksparse-k{k}"]["active_fraction"] <= 3 * k / 512
    assert runs["raw-pixels"]["probe_accuracy"] > 0.5  # ten classes: chance is 0.1
    figures = {p.stem for p in (folder / "figures").iterdir()}
    assert {"accuracy_vs_k", "confusion-kl", "filters-ksparse-k25", "loss_curves"} <= figures
    log = (folder / "console.log").read_text()
    assert "train error" in log and "test accuracy" in log


@needs_fashion
def test_sparse_codes_fashion_quick_runs_on_fashion_mnist(tmp_path):
    folder = run_study(load_study("sparse-codes-fashion", quick=True), out=tmp_path / "x", quiet=True)
    m = _metrics(folder)
    assert m["dataset"]["dataset"] == "fashion-mnist" and not m["dataset"]["fallback_used"]
    assert "Ankle boot" in m["dataset"]["class_names"]
    runs = {e["name"]: e for e in m["runs"]}
    assert {"kl", "ksparse-k70", "raw-pixels"} <= set(runs)  # the base study's models and baseline
    assert all(len(e["history"]) == 2 for n, e in runs.items() if n != "raw-pixels")  # [quick] epochs
    assert all(e["kmeans_acc"] >= 1 / 10 for e in runs.values())  # the mean over all matchings


@pytest.mark.realdata
def test_novelty_quick_scores_all_ten_fashion_classes(tmp_path):
    from aelab import datasets  # noqa: F401  (register the datasets)
    from aelab.registry import DATASETS

    if not DATASETS.get("fashion-mnist").info.debian.is_dir():
        pytest.skip("Fashion-MNIST IDX files are not installed")
    folder = run_study(load_study("novelty", quick=True), out=tmp_path / "x", quiet=True)
    m = _metrics(folder)
    for e in m["runs"]:
        assert set(e["auroc_per_class"]) == {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Shirt", "Bag"}
        # Every unseen-vs-seen pair belongs to one unseen class, and the test part holds 1,000
        # images of each: the overall AUROC is the mean of the per-class ones.
        assert e["auroc"] == pytest.approx(np.mean(list(e["auroc_per_class"].values())))
    assert "novelty-stacked" in m["figures"]


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("models.ksparse.params.k=600", "k = 600"),
        ("models.ksparse.params.alpha=8", "alpha = 8"),
        ("models.kl.params.rho=1.0", "rho = 1.0"),
    ],
)
def test_bad_sparse_settings_fail_when_the_study_loads(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_study("sparse-codes", overrides=[override])


def test_a_probe_on_unlabelled_data_stops_before_training(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.random.default_rng(0).random((60, 8, 8), dtype=np.float32))
    study = tmp_path / "s.toml"
    study.write_text(f"""
name = "unlabelled"
[data]
dataset = "{path}"
[train]
epochs = 1
[[models]]
name = "ae"
model = "stacked"
params = {{ hidden = [8] }}
[[steps]]
kind = "linear_probe"
""")
    with pytest.raises(ConfigError, match="need class labels"):
        run_study(load_study(str(study)), out=tmp_path / "x", quiet=True)
    assert not (tmp_path / "x").exists()
