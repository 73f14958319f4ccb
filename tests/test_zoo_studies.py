"""The keras-tour and conv-lr studies end to end with --quick, and the learning-rate verdicts."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from aelab.steps import VERDICTS, lr_verdicts
from aelab.study import expand_runs, load_study, run_study


def _run(name: str, tmp_path_factory) -> dict:
    folder = run_study(load_study(name, quick=True), out=tmp_path_factory.mktemp(name) / "run", quiet=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["_folder"] = folder
    return metrics


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    return _run("keras-tour", tmp_path_factory)


@pytest.fixture(scope="module")
def conv_lr(tmp_path_factory):
    return _run("conv-lr", tmp_path_factory)


def test_keras_tour_study_settings():
    runs = {r.name: r for r in expand_runs(load_study("keras-tour"))}
    assert list(runs) == ["simple", "sparse", "deep", "conv", "denoising", "vae"]
    epochs = {n: r.train.epochs for n, r in runs.items()}
    assert epochs == {"simple": 50, "sparse": 100, "deep": 100, "conv": 50, "denoising": 50, "vae": 50}
    assert runs["conv"].train.batch_size == 128 and runs["vae"].train.batch_size == 100
    assert runs["simple"].train.optimizer == "adadelta-original"
    assert runs["vae"].train.optimizer == "rmsprop"
    assert runs["denoising"].train.input_noise == 0.5
    assert runs["sparse"].params == {"activity_l1": 1e-4}
    quick = expand_runs(load_study("keras-tour", quick=True))
    assert all(r.train.epochs <= 3 for r in quick)  # [quick] beats the per-model epochs


def test_keras_tour_quick(tour):
    runs = {r["name"]: r for r in tour["runs"]}
    assert set(runs) == {"simple", "sparse", "deep", "conv", "denoising", "vae"}
    for r in runs.values():
        assert r["status"] == "completed", r.get("reason")
        for key in ("train_loss", "val_loss", "test_loss", "epochs_run", "seconds",
                    "seconds_per_epoch", "peak_rss_mb", "mean_code_activation"):
            assert math.isfinite(r[key]), key
    assert runs["simple"]["mean_code_activation"] >= 0  # ReLU codes
    assert runs["vae"]["history"][-1]["train_kl"] >= 0
    # MNIST is not shipped: the report says the fallback ran.
    assert tour["dataset"]["dataset"] in ("mnist", "mnist-5k")
    assert any(line.startswith("Data: ") for line in tour["summary"])
    figures = set(tour["figures"])
    expected = {"loss_curves", "denoising-denoising", "codes-conv", "latent-vae", "manifold-vae"}
    expected |= {f"reconstructions-{n}" for n in runs}
    assert expected <= figures
    for name in expected:
        assert (tour["_folder"] / "figures" / f"{name}.png").stat().st_size > 1000


def test_conv_lr_quick(conv_lr):
    runs = conv_lr["runs"]
    assert sorted(r["learning_rate"] for r in runs) == [0.001, 0.01, 0.1]
    for r in runs:
        assert r["verdict"] in ("learning", "not learning", "diverged")
        assert r["model"] == "conv-transposed" and r["batch_size"] == 64
    assert any(line.startswith("Verdicts") for line in conv_lr["summary"])
    figures = set(conv_lr["figures"])
    assert "loss_curves" in figures
    assert {f"reconstructions-{r['name']}" for r in runs} <= figures


def _ctx(*entries):
    runs = [SimpleNamespace(metrics=m, spec=SimpleNamespace(train=SimpleNamespace(learning_rate=lr)))
            for m, lr in entries]
    return SimpleNamespace(runs=runs, summary=[])


def _hist(*vals):
    return [{"epoch": i + 1, "train_loss": v, "val_loss": v} for i, v in enumerate(vals)]


def test_lr_verdict_rule():
    ctx = _ctx(
        ({"name": "a", "status": "diverged", "reason": "train_loss became nan at epoch 2",
          "history": _hist(50.0, math.nan)}, 0.1),
        ({"name": "b", "status": "completed", "history": _hist(100.0, 99.5, 99.2)}, 0.01),  # fell 0.8%
        ({"name": "c", "status": "completed", "history": _hist(100.0, 90.0, 80.0)}, 0.001),
        ({"name": "d", "status": "completed", "history": _hist(100.0, 99.0)}, 0.001),  # exactly 1%
        ({"name": "e", "status": "failed", "reason": "boom", "history": []}, 0.001),
    )
    lr_verdicts(ctx)
    got = [r.metrics["verdict"] for r in ctx.runs]
    assert got == ["diverged", "not learning", "learning", "learning", "failed"]
    assert set(got) <= set(VERDICTS)
    assert ctx.runs[0].metrics["diverged_epoch"] == 2
    assert ctx.runs[1].metrics["learning_rate"] == 0.01
    assert "epoch 2" in "\n".join(ctx.summary)
