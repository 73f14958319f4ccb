"""fit_stacked: every member trains exactly as it would alone through fit (within 1e-5)."""

import math

import pytest
import torch
import torch.nn.functional as F

from aelab.callbacks import Callback
from aelab.models import create_model
from aelab.optim import UPDATES, make_optimizer
from aelab.stacked import fit_stacked
from aelab.train import EarlyStopping, TrainConfig, fit, snapshot


class Part:
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = torch.from_numpy(load_digits().images.astype("float32") / 16.0).unsqueeze(1)
    return {"train": Part(x[:640]), "val": Part(x[640:800])}


@pytest.fixture(scope="module")
def padded(digits):  # 12x12: the conv models pool three times
    return {k: Part(F.pad(v.x[:320], (2, 2, 2, 2))) for k, v in digits.items()}


def close(a: float, b: float) -> bool:
    """The stated tolerance: 1e-5, relative above 1 (the VAE's and SSE's losses are sums)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-5 * max(1.0, abs(a))


def alone_and_stacked(data, model, params, configs):
    shape = tuple(data["train"].x.shape[1:])
    alone_models = [create_model(model, shape, seed=c.seed, **p) for c, p in zip(configs, params)]
    alone = [fit(m, data, c) for m, c in zip(alone_models, configs)]
    members = [create_model(model, shape, seed=c.seed, **p) for c, p in zip(configs, params)]
    stacked = fit_stacked(members, data, configs)
    for a, s, ma, ms in zip(alone, stacked, alone_models, members):
        assert (s.status, s.epochs_run, s.best_epoch) == (a.status, a.epochs_run, a.best_epoch)
        for ea, es in zip(a.epochs, s.epochs):
            assert set(ea) == set(es)
            for k in ea.keys() - {"seconds"}:
                assert close(ea[k], es[k]), (k, ea["epoch"], ea[k], es[k])
        if a.status != "diverged":
            for (name, pa), pb in zip(ma.state_dict().items(), ms.state_dict().values()):
                assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5), name
    return alone, stacked


def test_dense_members_stop_early_and_diverge_alone(digits):
    es = EarlyStopping(patience=1, min_delta=0.02, restore_best=True)
    configs = [TrainConfig(epochs=5, batch_size=32, seed=s, optimizer="sgd", learning_rate=lr, early_stopping=es)
               for s, lr in [(0, 0.5), (1, 5.0), (2, 1e6), (3, 0.5)]]
    params = [{"hidden": [32, 8], "activity_l1": a, "loss": "mse", "output": "linear"} for a in (0.0, 1e-3, 0.0, 1e-2)]
    alone, _ = alone_and_stacked(digits, "stacked", params, configs)
    statuses = {h.status for h in alone}
    assert "diverged" in statuses and "stopped_early" in statuses  # the case this test is about
    assert len({h.epochs_run for h in alone}) > 1


def test_k_sparse_members_with_their_own_k_and_schedule(digits):
    params = [{"hidden": [32], "k": 4}, {"hidden": [32], "k": 8, "k_start": 24}, {"hidden": [32], "k": 16}]
    configs = [TrainConfig(epochs=4, batch_size=64, seed=s, learning_rate=3e-3) for s in range(3)]
    alone_and_stacked(digits, "k-sparse", params, configs)


def test_kl_sparse_and_vae_members(digits):
    alone_and_stacked(digits, "sparse-kl", [{"hidden": [32], "rho": r, "beta": b} for r, b in [(0.05, 0.1), (0.2, 1.0)]],
                      [TrainConfig(epochs=3, batch_size=32, seed=s) for s in range(2)])
    alone_and_stacked(digits, "vae", [{"hidden": 32, "latent_dim": 2}] * 3,
                      [TrainConfig(epochs=3, batch_size=50, seed=s, optimizer="rmsprop") for s in range(3)])


@pytest.mark.parametrize("model,params,train", [
    ("conv", {}, {"optimizer": "adam"}),
    ("denoising-conv", {}, {"input_noise": 0.5}),
    ("conv-transposed", {"loss": "sse", "output": "linear"}, {"optimizer": "adam"}),
])
def test_conv_members(padded, model, params, train):
    configs = [TrainConfig(epochs=2, batch_size=32, seed=s, learning_rate=lr, **train)
               for s, lr in [(0, 1e-3), (1, 1e-2)]]
    alone_and_stacked(padded, model, [params] * 2, configs)


class Capture(Callback):
    """Keeps the resume state after ``epoch`` and stops training there (a kill after it)."""

    def __init__(self, epoch, stop=True):
        self.epoch, self.stop, self.state = epoch, stop, None

    def on_epoch_end(self, state, record):
        if record["epoch"] == self.epoch:
            self.state = snapshot(state)
            if self.stop:
                state.should_stop = True


def test_resumed_stack_and_member_alone_match_an_uninterrupted_run(digits):
    es = EarlyStopping(patience=2, min_delta=0.0)
    configs = [TrainConfig(epochs=5, batch_size=32, seed=s, learning_rate=lr, early_stopping=es)
               for s, lr in [(0, 1e-3), (1, 3e-3)]]

    def models():
        return [create_model("stacked", (1, 8, 8), seed=c.seed, hidden=[32, 8]) for c in configs]

    whole = fit_stacked(models(), digits, configs)
    caps = [Capture(2), Capture(2)]
    fit_stacked(models(), digits, configs, callbacks=[[c] for c in caps])
    resumed = fit_stacked(models(), digits, configs, resumes=[c.state for c in caps])
    for w, r in zip(whole, resumed):
        assert [e["val_loss"] for e in w.epochs] == pytest.approx([e["val_loss"] for e in r.epochs], abs=1e-6)
    # A member's resume state is a single run's: member 1 continues alone with fit.
    alone = fit(models()[1], digits, configs[1], resume=caps[1].state)
    assert [e["val_loss"] for e in alone.epochs] == pytest.approx([e["val_loss"] for e in whole[1].epochs], abs=1e-5)


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_stacked_update_with_per_member_rates_equals_single_optimizers(name):
    torch.manual_seed(0)
    rates = [1e-3, 3e-2, 0.5]
    p0, grads = torch.randn(3, 50), [torch.randn(3, 50) for _ in range(4)]
    stacked, st = p0.clone(), {}
    kwargs = {}
    singles = []
    for j, lr in enumerate(rates):
        p = torch.nn.Parameter(p0[j].clone())
        singles.append((p, make_optimizer(name, [p], lr)))
    from aelab.optim import OPTIMIZERS

    kwargs = dict(OPTIMIZERS[name][1])
    lr = torch.tensor(rates, dtype=torch.float64).unsqueeze(1)
    for g in grads:
        UPDATES[name](stacked, g, st, lr, **kwargs)
        for j, (p, opt) in enumerate(singles):
            p.grad = g[j].clone()
            opt.step()
    for j, (p, _) in enumerate(singles):
        torch.testing.assert_close(stacked[j], p.detach(), rtol=1e-6, atol=1e-7)


def test_members_must_share_shapes_and_training_settings(digits):
    a = create_model("stacked", (1, 8, 8), seed=0, hidden=[32, 8])
    b = create_model("stacked", (1, 8, 8), seed=0, hidden=[32, 4])
    with pytest.raises(ValueError, match="share"):
        fit_stacked([a, b], digits, [TrainConfig(epochs=1)] * 2)
    with pytest.raises(ValueError, match="share"):
        fit_stacked([a, a], digits, [TrainConfig(epochs=1), TrainConfig(epochs=2)])


def test_a_group_too_short_to_repay_its_timing_is_not_timed(monkeypatch):
    """Issue 21 (overhead): fashion-shoes --quick spent more time timing whether to stack its
    batch-256 pair (18 batches in all) than training it."""
    from types import SimpleNamespace

    import aelab.stacked as stacked
    from aelab.executors._base import _stacks

    monkeypatch.setattr(stacked, "stacking_speedup", lambda *a, **k: pytest.fail("timed"))
    short = [SimpleNamespace(train=TrainConfig(epochs=3, batch_size=256, vectorize="auto"))] * 2
    assert _stacks(short, {"train": list(range(1500))}) is False  # 3 epochs x 6 batches
    assert not stacked.timing_pays([s.train for s in short], 1500)
    assert stacked.timing_pays([TrainConfig(epochs=3, batch_size=32)] * 2, 1500)  # 3 x 47 batches
