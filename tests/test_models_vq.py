"""VQ-VAE: quantisation, the EMA codebook against a hand computation, the straight-through
gradient, dead-code restarts and perplexity in the epoch records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aelab.models import create_model
from aelab.models.vq import Quantizer, perplexity
from aelab.train import TrainConfig, fit


def _batch(n=8, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_quantizer_picks_the_nearest_code():
    q = Quantizer(3, 2, ema=False)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    z_e = torch.tensor([[0.9, 0.1], [0.1, 1.5], [-0.2, 0.1], [0.6, 0.0]]).t().reshape(1, 2, 2, 2)
    z_q, flat, idx = q.quantize(z_e)
    assert idx.tolist() == [1, 2, 0, 1]
    torch.testing.assert_close(z_q, q.codebook[idx].t().reshape(1, 2, 2, 2))


def test_ema_update_matches_a_hand_computation():
    q = Quantizer(3, 2, ema=True, decay=0.9, epsilon=0.1)
    init = q.codebook.clone().double().numpy()
    flat = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    idx = torch.tensor([0, 0, 2])
    q.ema_update(flat, idx)
    # By hand: counts n = (2, 0, 1), sums m = ((4, 6), (0, 0), (5, 6)); N and m start at 1 and init.
    n_ema = 0.9 * np.ones(3) + 0.1 * np.array([2.0, 0.0, 1.0])
    m_ema = 0.9 * init + 0.1 * np.array([[4.0, 6.0], [0.0, 0.0], [5.0, 6.0]])
    total = n_ema.sum()
    smoothed = (n_ema + 0.1) / (total + 3 * 0.1) * total
    np.testing.assert_allclose(q.cluster_size.numpy(), n_ema, rtol=1e-6)
    np.testing.assert_allclose(q.embed_sum.numpy(), m_ema, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(q.codebook.numpy(), m_ema / smoothed[:, None], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("ema", [True, False])
def test_straight_through_gradient_reaches_the_encoder(ema):
    model = create_model("vq-vae", seed=0, ema=ema)
    x = _batch()
    # Only the reconstruction term: its gradient reaches the encoder only through the quantiser.
    model.reconstruction_loss(model.reconstruct_raw(x), x).backward()
    first = model.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0
    z_e = model.encoder[:-1](x).detach().requires_grad_()
    out = model.encoder[-1](z_e)
    torch.testing.assert_close(out, model.quantizer.quantize(z_e)[0])
    out.sum().backward()
    torch.testing.assert_close(z_e.grad, torch.ones_like(z_e))  # identity gradient


def test_loss_parts():
    model = create_model("vq-vae", seed=0, ema=False, commitment=0.5)
    x = _batch()
    parts = model.loss(x)
    torch.testing.assert_close(parts["codebook"], parts["commitment"])  # same value, other gradient
    torch.testing.assert_close(parts["penalty"], parts["codebook"] + 0.5 * parts["commitment"])
    torch.testing.assert_close(parts["loss"], parts["recon"] + parts["penalty"])
    counts = torch.bincount(model.codes(x).flatten(), minlength=128).double()
    p = counts[counts > 0] / counts.sum()
    assert parts["perplexity"].item() == pytest.approx(math.exp(-(p * p.log()).sum().item()), rel=1e-5)


def test_perplexity():
    assert perplexity(torch.tensor([5.0, 5.0, 5.0, 5.0])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([7.0, 0.0, 0.0])).item() == pytest.approx(1.0)


@pytest.mark.parametrize("ema", [True, False])
def test_an_unused_code_is_restarted_on_an_encoder_output(ema):
    model = create_model("vq-vae", seed=0, ema=ema, codebook_size=8)
    with torch.no_grad():
        model.quantizer.codebook[3] = 1e6  # never the nearest code
    data = {"train": _batch(n=32), "val": _batch(n=8, seed=1)}
    hist = fit(model, data, TrainConfig(epochs=2, batch_size=16, seed=0, optimizer="adam"))
    first = hist.epochs[0]
    assert first["codebook_restarts"] >= 1 and first["codebook_used"] <= 7
    assert first["codebook_used"] + first["codebook_restarts"] == 8
    assert model.quantizer.codebook[3].abs().max() < 1e3  # moved onto the encoder outputs at epoch 2's start


def test_the_last_epoch_restarts_nothing_so_the_validated_model_is_the_runs():
    from aelab.train import evaluate_loss

    model = create_model("vq-vae", seed=0, codebook_size=64)
    data = {"train": _batch(n=32), "val": _batch(n=8, seed=1)}
    hist = fit(model, data, TrainConfig(epochs=1, batch_size=16, seed=0, optimizer="adam"))
    assert hist.epochs[0]["codebook_restarts"] > 0  # some codes were unused...
    # ... yet the model after fit is the one validated: the same loss again
    assert evaluate_loss(model, data["val"])["loss"] == pytest.approx(hist.epochs[0]["val_loss"], abs=1e-6)
    for rec in hist.epochs:
        assert {"train_perplexity", "val_perplexity", "codebook_perplexity"} <= rec.keys()
        assert 1 <= rec["codebook_perplexity"] <= rec["codebook_used"] + 1e-6


def test_codes_are_indices_on_a_7x7_grid():
    model = create_model("vq-vae", seed=0, codebook_size=16)
    codes = model.codes(_batch(n=2))
    assert codes.shape == (2, 7, 7) and codes.dtype == torch.int64 and 0 <= codes.min() and codes.max() < 16


def test_a_run_resumed_between_a_restart_and_the_next_epoch_matches_an_uninterrupted_one():
    from aelab.callbacks import Callback
    from aelab.runs.states import load_resume, resume_bytes
    from aelab.train import snapshot

    data = {"train": _batch(n=32), "val": _batch(n=8, seed=1)}
    cfg = TrainConfig(epochs=3, batch_size=16, seed=0, optimizer="adam")
    whole = fit(create_model("vq-vae", seed=0, codebook_size=64), data, cfg)
    saved = {}

    class Stop(Callback):
        def on_epoch_end(self, state, record):
            if record["epoch"] == 1:
                saved["state"] = resume_bytes(snapshot(state))  # through the file format
                state.should_stop = True

    fit(create_model("vq-vae", seed=0, codebook_size=64), data, cfg, [Stop()])
    resumed = fit(create_model("vq-vae", seed=0, codebook_size=64), data, cfg, resume=load_resume(saved["state"]))
    assert whole.epochs[0]["codebook_restarts"] > 0
    assert [e["val_loss"] for e in resumed.epochs] == pytest.approx([e["val_loss"] for e in whole.epochs], abs=1e-6)
