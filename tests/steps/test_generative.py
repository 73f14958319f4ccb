"""likelihood and samples: the NLL recomputed with torch.distributions from the same draws, the
-ELBO from its analytic KL, and the VQ-VAE's fitted code prior counted by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from aelab.evaluate.likelihood import fit_code_prior


def _log_px(model, x, raw):
    """log p(x|z) per image with torch.distributions: Bernoulli logits, or the learned-σ Gaussian."""
    if getattr(model, "likelihood", None) == "gaussian":
        return Normal(torch.sigmoid(raw), model.log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    return Bernoulli(logits=raw).log_prob(x).flatten(1).sum(1)


def _scored(s, run):
    """The images the step scored: the first 100 test images, binarized with seed 0 for the
    Bernoulli vae, grey levels for the Gaussian-decoder gvae."""
    x = s.splits["test"].x[:100]
    return x if run == "gvae" else torch.bernoulli(x, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("run", ["vae", "gvae"])
@torch.inference_mode()
def test_nll_matches_an_independent_importance_estimate(every_step, run):
    s, k = every_step, 20
    model, x = s.models[run], _scored(s, run)
    mean, log_var = model.stats(x)
    q = Normal(mean, (0.5 * log_var).exp())
    # The step's draws: one (k, N, D) block from a generator seeded by the study's seed.
    z = mean + q.scale * torch.randn((k, *mean.shape), generator=torch.Generator().manual_seed(s.study.seed))
    raw = model.decode_raw(z.reshape(-1, mean.shape[1])).view(k, len(x), *x.shape[1:])
    log_px = torch.stack([_log_px(model, x, raw[i]) for i in range(k)])  # (k, N)
    log_w = log_px + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    nll = -(torch.logsumexp(log_w.double(), 0) - math.log(k)).mean().item()
    entry = s.runs[run]
    assert entry["nll"] == pytest.approx(nll, rel=1e-4)
    assert entry["nll"] <= entry["neg_elbo"]  # log p(x) >= ELBO
    # -ELBO = E_q[-log p(x|z)] + KL(q || N(0, I)), the KL in closed form.
    kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(1)
    neg_elbo = (-log_px.mean(0) + kl).mean().item()
    assert entry["neg_elbo"] == pytest.approx(neg_elbo, rel=0.01)
    assert (entry["nll_k"], entry["nll_data"]) == (k, "grey levels" if run == "gvae" else "binarized (seed 0)")


def test_likelihood_skips_models_without_one(every_step):
    assert all("nll" not in every_step.runs[r] for r in ("ks-k4", "conv", "vq"))
    assert "- not scored (no decoder likelihood): ks-k4, ks-k8, conv, vq" in every_step.metrics["summary"]


@torch.inference_mode()
def test_the_fitted_code_prior_counts_codes_per_position(every_step):
    model, x = every_step.models["vq"], every_step.splits["train"].x
    idx = model.codes(x).flatten(1)  # (N, H·W)
    size = len(model.quantizer.codebook)
    expected = torch.stack([torch.bincount(idx[:, p], minlength=size) for p in range(idx.shape[1])]) + 1
    expected = expected.double() / expected.sum(1, keepdim=True)
    assert torch.allclose(fit_code_prior(model, x), expected)


def test_samples_are_drawn_for_models_with_a_prior(every_step):
    drawn = {f for f in every_step.figures if f.startswith("samples-")}
    assert drawn == {"samples-vae", "samples-gvae", "samples-vq"}


def test_likelihood_refuses_a_named_run_without_a_decoder_likelihood(tmp_path):
    from aelab.config import load_study
    from aelab.errors import ConfigError

    (tmp_path / "s.toml").write_text("""
name = "l"
[data]
dataset = "digits"
[[models]]
name = "ae"
model = "simple"
[[steps]]
kind = "likelihood"
runs = ["ae"]
""")
    with pytest.raises(ConfigError, match=r"steps\[0\]\.runs: run ae \(simple\) has no decoder likelihood"):
        load_study(str(tmp_path / "s.toml"))
