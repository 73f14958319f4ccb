"""Importance-sampled NLL against the exact log-likelihood of a linear-Gaussian model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aelab.evaluate.likelihood import binarize, importance_nll
from aelab.models import create_model

D, LATENT, SIGMA = 6, 2, 0.5


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I) with orthogonal columns of W, so the exact
    posterior is a diagonal Gaussian: Σ = (I + WᵀW/σ²)⁻¹, μ = Σ Wᵀ(x - b)/σ². ``shift`` and
    ``scale`` make q(z|x) deliberately wrong."""

    def __init__(self, shift: float = 0.0, scale: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(D, LATENT, generator=g, dtype=torch.float64))
        self.W = nn.Parameter(q * torch.tensor([2.0, 0.7], dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(D, generator=g, dtype=torch.float64))
        self.shift, self.scale = shift, scale

    def stats(self, x):
        var = 1 / (1 + (self.W.square().sum(0)) / SIGMA**2)  # diagonal, as WᵀW is
        mean = (x - self.b) @ self.W / SIGMA**2 * var
        return mean + self.shift, torch.log(var * self.scale).expand_as(mean)

    def decode_raw(self, z):
        return z @ self.W.t() + self.b

    def log_likelihood(self, x, raw):
        return torch.distributions.Normal(raw, SIGMA).log_prob(x).sum(-1)

    def exact_nll(self, x) -> float:
        cov = self.W @ self.W.t() + SIGMA**2 * torch.eye(D, dtype=torch.float64)
        dist = torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov)
        return -dist.log_prob(x).mean().item()


def _data(n=50):
    model = LinearGaussian()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, LATENT, generator=g, dtype=torch.float64)
    with torch.no_grad():
        return model.decode_raw(z) + SIGMA * torch.randn(n, D, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("k", [1, 7, 50])
def test_exact_posterior_gives_the_exact_likelihood_for_any_k(k):
    model, x = LinearGaussian(), _data()
    out = importance_nll(model, x, k=k, batch=13, generator=torch.Generator().manual_seed(0))
    assert out["nll"] == pytest.approx(model.exact_nll(x), abs=1e-4)
    assert out["neg_elbo"] == pytest.approx(model.exact_nll(x), abs=1e-4)
    assert (out["k"], out["n"]) == (k, 50)


def test_wrong_posterior_converges_to_the_likelihood_as_k_grows():
    model, x = LinearGaussian(shift=0.4, scale=2.0), _data()
    exact = model.exact_nll(x)
    runs = {k: importance_nll(model, x, k=k, batch=1000, generator=torch.Generator().manual_seed(2))
            for k in (1, 10, 100, 3000)}
    gaps = [runs[k]["nll"] - exact for k in (1, 10, 100, 3000)]
    assert gaps[0] > 0.2 and gaps == sorted(gaps, reverse=True)
    assert abs(gaps[-1]) < 0.01
    for out in runs.values():
        assert out["neg_elbo"] - exact > 0.2  # the ELBO stays below log p(x)


def test_batching_does_not_change_the_estimate():
    model, x = LinearGaussian(shift=0.3), _data(20)
    a = importance_nll(model, x, k=40, batch=40, generator=torch.Generator().manual_seed(3))
    b = importance_nll(model, x, k=40, batch=10, generator=torch.Generator().manual_seed(3))
    assert a["neg_elbo"] == pytest.approx(b["neg_elbo"], rel=0.05)  # same estimator, other draws order
    assert a["nll"] == pytest.approx(b["nll"], rel=0.02)


def test_vae_family_nll_on_binarized_images():
    torch.manual_seed(0)
    x = binarize(torch.rand(6, 1, 28, 28), seed=0)
    model = create_model("beta-vae", seed=0, latent_dim=3)
    out = importance_nll(model, x, k=20, generator=torch.Generator().manual_seed(0))
    assert out["nll"] <= out["neg_elbo"]
    # An untrained decoder outputs p ≈ 1/2 per pixel: about 784 · ln 2 nats per image.
    assert out["nll"] == pytest.approx(784 * math.log(2), rel=0.1)


def test_binarize_is_seeded_and_follows_the_grey_levels():
    x = torch.full((200, 1, 28, 28), 0.3)
    a, b, c = binarize(x, 1), binarize(x, 1), binarize(x, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) == {0.0, 1.0} and a.mean().item() == pytest.approx(0.3, abs=0.005)
