"""fit(): Keras early stopping, reproducibility, divergence, denoising inputs."""

import math

import pytest
import torch

from aelab.models import create_model
from aelab.train import EarlyStopper, EarlyStopping, TrainConfig, evaluate_loss, fit


def run_stopper(values, patience, min_delta):
    s = EarlyStopper(EarlyStopping(patience=patience, min_delta=min_delta))
    for epoch, v in enumerate(values, 1):
        _, stop = s.update(epoch, v)
        if stop:
            return epoch, s.best_epoch, s.best
    return None, s.best_epoch, s.best


def test_early_stopping_keras_min_delta_semantics():
    # min_delta 0.01: 0.995 is not an improvement on 1.0, 0.98 is; 0.97 does not beat 0.98 - 0.01.
    values = [1.0, 0.995, 0.98, 0.985, 0.97, 0.96, 0.955]
    assert run_stopper(values, patience=2, min_delta=0.01) == (5, 3, 0.98)
    assert run_stopper(values, patience=3, min_delta=0.01) == (None, 6, 0.96)
    # without min_delta every decrease counts
    assert run_stopper(values, patience=2, min_delta=0.0) == (None, 7, 0.955)


def test_early_stopping_patience_counts_epochs_without_improvement():
    assert run_stopper([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1], patience=5, min_delta=0.0) == (6, 1, 0.5)


def test_fit_learns_and_records_history(tiny_splits):
    model = create_model("stacked", tiny_splits["train"].x.shape[1:], hidden=[64, 16])
    cfg = TrainConfig(epochs=3, batch_size=32, learning_rate=1e-3)
    hist = fit(model, tiny_splits, cfg)
    assert hist.status == "completed" and hist.epochs_run == 3
    losses = hist.column("val_loss")
    assert losses[-1] < losses[0]
    assert {"train_loss", "train_recon", "train_penalty", "val_loss", "seconds"} <= set(hist.last)
    assert hist.peak_rss_mb > 0
    assert evaluate_loss(model, tiny_splits["val"])["loss"] == pytest.approx(hist.last["val_loss"], rel=1e-5)


def test_fit_is_reproducible_with_a_seed(tiny_splits):
    def once(seed):
        torch.manual_seed(seed)
        model = create_model("stacked", hidden=[32, 8])
        return fit(model, tiny_splits, TrainConfig(epochs=2, batch_size=64, seed=seed)).column("train_loss")

    assert once(1) == once(1)
    assert once(1) != once(2)


def test_fit_stops_early_and_restores_best(tiny_splits):
    model = create_model("stacked", hidden=[32, 8])
    es = EarlyStopping(patience=1, min_delta=10.0, restore_best=True)  # nothing beats best - 10
    hist = fit(model, tiny_splits, TrainConfig(epochs=10, batch_size=64, early_stopping=es))
    assert hist.status == "stopped_early" and hist.epochs_run == 2 and hist.best_epoch == 1
    assert evaluate_loss(model, tiny_splits["val"])["loss"] == pytest.approx(hist.epochs[0]["val_loss"], rel=1e-5)


def test_fit_reports_divergence(tiny_splits):
    model = create_model("stacked", hidden=[32, 8], output="linear", loss="mse")
    hist = fit(model, tiny_splits, TrainConfig(epochs=5, batch_size=16, optimizer="sgd", learning_rate=1e6))
    assert hist.status == "diverged"
    assert "epoch" in hist.reason and hist.epochs_run < 5
    assert not math.isfinite(hist.last["train_loss"]) or not math.isfinite(hist.last["val_loss"])


def test_input_noise_changes_training_but_targets_stay_clean(tiny_splits):
    def val(noise):
        model = create_model("stacked", hidden=[32, 8])
        return fit(model, tiny_splits, TrainConfig(epochs=1, input_noise=noise)).last["val_loss"]

    assert val(0.0) != val(0.5)


def test_fit_keeps_conv_weights_channels_last_on_cpu_and_checkpoints_round_trip(tmp_path):
    """Channels-last is bench_conv's fast path; it must survive flattening and not leak into files."""
    from aelab.models import create_model
    from aelab.runs import load_checkpoint, save_checkpoint

    m = create_model("conv", (1, 12, 12))
    fit(m, {"train": torch.rand(16, 1, 12, 12)}, TrainConfig(epochs=1, batch_size=8))
    w = next(p for p in m.parameters() if p.dim() == 4 and p.shape[1] > 1)  # 1 channel: both layouts
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    save_checkpoint(tmp_path / "c.safetensors", m)
    back = load_checkpoint(tmp_path / "c.safetensors")
    for (k, a), b in zip(m.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), k
