"""fit(): Keras early stopping, callbacks, reproducibility, resume, divergence, denoising inputs."""

import math

import pytest
import torch

from aelab.callbacks import Callback, EarlyStoppingCallback, FitState, History, LambdaCallback
from aelab.errors import ConfigError
from aelab.models import create_model
from aelab.train import EarlyStopping as EarlyStoppingConfig
from aelab.train import TrainConfig, evaluate_loss, fit, snapshot


def run_stopper(values, patience, min_delta):
    """Feed monitored values to the Keras early-stopping callback; (stop epoch, best epoch, best)."""
    cb = EarlyStoppingCallback("val_loss", patience, min_delta)
    state = FitState(model=None, optimizer=None, config=None, history=History(), generators={})
    for epoch, v in enumerate(values, 1):
        cb.on_epoch_end(state, {"epoch": epoch, "val_loss": v})
        if state.should_stop:
            return epoch, cb.best_epoch, cb.best
    return None, cb.best_epoch, cb.best


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


def test_fit_is_reproducible_with_a_seed_and_leaves_the_global_rng_alone(tiny_splits):
    def once(seed):
        model = create_model("vae", seed=seed)  # the VAE samples: fit's own generator drives it
        return fit(model, tiny_splits, TrainConfig(epochs=2, batch_size=64, seed=seed)).column("train_loss")

    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = once(1)
    assert torch.equal(torch.get_rng_state(), before)  # neither create_model(seed=) nor fit drew from it
    assert first == once(1)
    assert first != once(2)


def test_callbacks_run_in_order_and_can_stop_training(tiny_splits):
    calls = []

    class Spy(Callback):
        def __init__(self, tag):
            self.tag = tag

        def on_fit_start(self, state):
            calls.append((self.tag, "fit_start"))

        def on_epoch_start(self, state):
            calls.append((self.tag, "epoch_start", state.epoch))

        def on_epoch_end(self, state, record):
            calls.append((self.tag, "epoch_end", record["epoch"]))
            if self.tag == "b" and record["epoch"] == 2:
                state.stop("stopped_early", "the spy had seen enough")

        def on_fit_end(self, state):
            calls.append((self.tag, "fit_end"))

    model = create_model("stacked", hidden=[16, 4])
    hist = fit(model, tiny_splits, TrainConfig(epochs=5, batch_size=128), [Spy("a"), Spy("b")])
    assert hist.epochs_run == 2 and hist.status == "stopped_early" and hist.reason == "the spy had seen enough"
    assert calls == [("a", "fit_start"), ("b", "fit_start"),
                     ("a", "epoch_start", 1), ("b", "epoch_start", 1), ("a", "epoch_end", 1), ("b", "epoch_end", 1),
                     ("a", "epoch_start", 2), ("b", "epoch_start", 2), ("a", "epoch_end", 2), ("b", "epoch_end", 2),
                     ("a", "fit_end"), ("b", "fit_end")]


def test_early_stopping_on_a_value_the_run_does_not_produce_lists_the_available_ones(tiny_splits):
    model = create_model("stacked", hidden=[16, 4])
    cfg = TrainConfig(epochs=2, early_stopping=EarlyStoppingConfig(monitor="val_kl"))
    with pytest.raises(ConfigError, match="val_kl.*choose one of: train_loss, train_recon, train_penalty, val_loss"):
        fit(model, tiny_splits, cfg)


def test_fit_stops_early_and_restores_best(tiny_splits):
    model = create_model("stacked", hidden=[32, 8])
    es = EarlyStoppingConfig(patience=1, min_delta=10.0, restore_best=True)  # nothing beats best - 10
    hist = fit(model, tiny_splits, TrainConfig(epochs=10, batch_size=64, early_stopping=es))
    assert hist.status == "stopped_early" and hist.epochs_run == 2 and hist.best_epoch == 1
    assert evaluate_loss(model, tiny_splits["val"])["loss"] == pytest.approx(hist.epochs[0]["val_loss"], rel=1e-5)


@pytest.mark.parametrize("name, params, noise", [
    ("vae", {}, 0.0),  # sampling
    ("k-sparse", {"hidden": [64], "k": 5, "k_start": 30}, 0.3),  # a model schedule and input noise
    ("stacked", {"hidden": [32, 8], "activity_l1": 1e-4}, 0.0),
])
def test_a_fit_resumed_after_any_epoch_ends_as_the_uninterrupted_one(tiny_splits, name, params, noise):
    """The resume state (model, optimizer, generators, callbacks, history) continues a fit with
    exactly the numbers of a fit that was never interrupted."""
    cfg = TrainConfig(epochs=4, batch_size=64, seed=3, input_noise=noise,
                      early_stopping=EarlyStoppingConfig(patience=3, min_delta=1e-3, restore_best=True))
    states = {}
    grab = LambdaCallback(on_epoch_end=lambda state, rec: states.setdefault(state.epoch, snapshot(state)))
    full = fit(create_model(name, seed=3, **params), tiny_splits, cfg, [grab])
    for after in (1, 2):
        resumed_model = create_model(name, seed=99, **params)  # weights come from the state
        resumed = fit(resumed_model, tiny_splits, cfg, resume=states[after])
        assert resumed.epochs_run == full.epochs_run and resumed.status == full.status
        for a, b in zip(full.epochs, resumed.epochs, strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
            assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)


def test_fit_reports_divergence(tiny_splits):
    model = create_model("stacked", hidden=[32, 8], output="linear", loss="mse")
    hist = fit(model, tiny_splits, TrainConfig(epochs=5, batch_size=16, optimizer="sgd", learning_rate=1e6))
    assert hist.status == "diverged"
    assert "epoch" in hist.reason and hist.epochs_run < 5
    assert not math.isfinite(hist.last["train_loss"]) or not math.isfinite(hist.last["val_loss"])


def test_input_noise_changes_training_but_targets_stay_clean(tiny_splits):
    def val(noise):
        model = create_model("stacked", hidden=[32, 8], seed=0)
        return fit(model, tiny_splits, TrainConfig(epochs=1, input_noise=noise)).last["val_loss"]

    assert val(0.0) != val(0.5)


def test_fit_keeps_conv_weights_channels_last_on_cpu_and_checkpoints_round_trip(tmp_path):
    """Channels-last is bench_conv's fast path; it must survive flattening and not leak into files."""
    from aelab.runs import load_checkpoint, save_checkpoint

    m = create_model("conv", (1, 12, 12))
    fit(m, {"train": torch.rand(16, 1, 12, 12)}, TrainConfig(epochs=1, batch_size=8))
    w = next(p for p in m.parameters() if p.dim() == 4 and p.shape[1] > 1)  # 1 channel: both layouts
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    save_checkpoint(tmp_path / "c.safetensors", m)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert not back.training  # ready for inference
    for (k, a), b in zip(m.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), k
