"""The VAE family: β = 1 is the plain VAE, β weights the KL, the decoders' likelihoods, conv-vae sizes."""

from __future__ import annotations

import math

import pytest
import torch

from aelab.models import create_model
from aelab.train import TrainConfig, fit


def _batch(shape=(1, 28, 28), n=8, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_beta_one_is_exactly_the_vae():
    a = create_model("vae", seed=3, latent_dim=4)
    b = create_model("beta-vae", seed=3, latent_dim=4, beta=1.0)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    x = _batch()
    pa = a.loss(x, generator=torch.Generator().manual_seed(1))
    pb = b.loss(x, generator=torch.Generator().manual_seed(1))
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k
    data = {"train": _batch(n=64, seed=2), "val": _batch(n=16, seed=4)}
    cfg = TrainConfig(epochs=2, batch_size=16, seed=5)
    ha, hb = fit(a, data, cfg), fit(b, data, cfg)
    for ra, rb in zip(ha.epochs, hb.epochs, strict=True):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb


def test_beta_weights_the_kl_only():
    x = _batch()
    parts = {beta: create_model("beta-vae", seed=0, beta=beta).loss(x, generator=torch.Generator().manual_seed(0))
             for beta in (1.0, 4.0)}
    torch.testing.assert_close(parts[4.0]["kl"], parts[1.0]["kl"])
    torch.testing.assert_close(parts[4.0]["recon"], parts[1.0]["recon"])
    torch.testing.assert_close(parts[4.0]["penalty"], 4 * parts[1.0]["kl"])
    torch.testing.assert_close(parts[4.0]["loss"], parts[4.0]["recon"] + 4 * parts[1.0]["kl"])


def test_bernoulli_log_likelihood_is_minus_the_summed_bce():
    model = create_model("beta-vae", seed=0)
    x = (_batch() > 0.5).float()
    raw = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    p = torch.sigmoid(raw).double()
    expected = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    torch.testing.assert_close(model.log_likelihood(x, raw).double(), expected, rtol=1e-5, atol=1e-3)


def test_gaussian_decoder_log_likelihood_in_nats_per_image():
    model = create_model("beta-vae", seed=0, decoder="gaussian")
    with torch.no_grad():
        model.log_sigma.fill_(math.log(0.3))
    x, raw = _batch(n=3), torch.randn(3, 1, 28, 28)
    normal = torch.distributions.Normal(torch.sigmoid(raw), 0.3)
    expected = normal.log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.log_likelihood(x, raw), expected, rtol=1e-5, atol=1e-2)
    parts = model.loss(x, generator=torch.Generator().manual_seed(0))
    parts["loss"].backward()
    assert model.log_sigma.grad is not None and model.log_sigma.grad != 0  # the variance is learned


def test_vae_with_squared_error_has_no_likelihood():
    model = create_model("vae", loss="mse", output="sigmoid")
    with pytest.raises(ValueError, match="no decoder likelihood"):
        model.log_likelihood(_batch(), torch.zeros(8, 1, 28, 28))


@pytest.mark.parametrize("shape, inner", [((1, 28, 28), (7, 7)), ((1, 8, 8), (2, 2)),
                                          ((3, 32, 32), (8, 8)), ((1, 7, 7), (7, 7))])
def test_conv_vae_sizes_from_the_input_shape(shape, inner):
    model = create_model("conv-vae", shape, latent_dim=5)
    x = _batch(shape, n=2)
    assert model(x).shape == x.shape and model.code_shape == (5,)
    assert tuple(model.decoder[4].unflattened_size[1:]) == inner
    mean, log_var = model.stats(x)
    assert mean.shape == log_var.shape == (2, 5)
