"""Likelihoods of generative autoencoders: importance-sampled negative log-likelihood beside the
ELBO (Burda et al. 2016, "Importance Weighted Autoencoders"; Rezende et al. 2014, appendix E).

Works for any model exposing ``stats(x) -> (mean, log_var)`` of a diagonal Gaussian q(z|x),
``decode_raw(z)`` and ``log_likelihood(x, raw) -> (N,)`` nats, with the prior p(z) = N(0, I):
the VAE family of ``aelab.models.vae``. Pure functions: tensors in, numbers out.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def binarize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Dynamically binarised images: each pixel is 1 with probability its grey level, drawn
    with a fixed seed so every model is scored on the same binary test set (as pythae and
    Burda et al. do for binarised MNIST)."""
    return torch.bernoulli(x, generator=torch.Generator(device=x.device).manual_seed(seed))


def _log_normal(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(log_var))) summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_var + (z - mean).square() / log_var.exp()).sum(-1)


def _log_weights(model, x: torch.Tensor, k: int, chunk: int, generator) -> torch.Tensor:
    """(k, B) importance log-weights log p(x, z_s) - log q(z_s | x), z_s ~ q(z|x), computed
    ``chunk`` samples at a time so at most chunk·B images go through the decoder at once."""
    mean, log_var = model.stats(x)
    mean, log_var = mean.flatten(1), log_var.flatten(1)
    std = torch.exp(0.5 * log_var)
    out = []
    for start in range(0, k, chunk):
        s = min(chunk, k - start)
        eps = torch.randn((s, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + std * eps  # (s, B, D)
        log_q = _log_normal(z, mean, log_var)
        log_prior = -0.5 * (LOG_2PI + z.square()).sum(-1)
        raw = model.decode_raw(z.reshape(s * len(x), -1))
        xs = x.expand(s, *x.shape).reshape(s * len(x), *x.shape[1:])
        log_px = model.log_likelihood(xs, raw).view(s, len(x))
        out.append(log_px + log_prior - log_q)
    return torch.cat(out)


@torch.inference_mode()
def importance_nll(model, x: torch.Tensor, k: int = 200, batch: int = 20_000,
                   generator: torch.Generator | None = None) -> dict[str, float]:
    """Importance-sampled -log p(x) and -ELBO, in nats per image, averaged over ``x``.

    -log p(x) ≈ -log (1/k Σ_s p(x, z_s) / q(z_s|x)), z_s ~ q(z|x): the IWAE bound, which tightens
    towards the true value as k grows and is exact for any k when q is the true posterior;
    -ELBO is the mean of the same log-weights (k = 1 in expectation). ``batch`` bounds the
    images × samples decoded at once (memory). Binarise the data first (:func:`binarize`) for
    a Bernoulli decoder. Returns ``{"nll", "neg_elbo", "k", "n"}``; nll <= neg_elbo.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunk = max(1, min(k, batch))
    images = max(1, batch // chunk)
    nll, elbo = 0.0, 0.0
    for i in range(0, len(x), images):
        xb = x[i : i + images].to(device)
        log_w = _log_weights(model, xb, k, chunk, generator).double()
        nll -= (torch.logsumexp(log_w, 0) - math.log(k)).sum().item()
        elbo += log_w.mean(0).sum().item()
    model.train(was_training)
    return {"nll": nll / len(x), "neg_elbo": -elbo / len(x), "k": k, "n": len(x)}


def has_likelihood(model) -> bool:
    """Whether :func:`importance_nll` can score ``model``: a Gaussian q(z|x) and a decoder that
    is a distribution (Bernoulli when trained with BCE, or the learned-variance Gaussian)."""
    return (hasattr(model, "stats") and hasattr(model, "log_likelihood")
            and (getattr(model, "likelihood", None) == "gaussian" or model.loss_name == "bce"))


@torch.inference_mode()
def fit_code_prior(model, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """(H·W, K) frequencies of each of a VQ-VAE's K codes at each position of its code map over
    images ``x``, Laplace-smoothed (+1): independent positions, the simplest stand-in for the
    paper's PixelCNN prior over codes (van den Oord et al. 2017, §4.1)."""
    device = next(model.parameters()).device
    size = len(model.quantizer.codebook)
    counts = torch.ones(math.prod(model.code_shape[1:]), size, dtype=torch.float64)
    for i in range(0, len(x), batch):
        idx = model.codes(x[i : i + batch].to(device)).flatten(1).cpu()  # (B, H·W)
        counts += torch.nn.functional.one_hot(idx, size).sum(0)
    return counts / counts.sum(1, keepdim=True)


def uniform_code_prior(model) -> torch.Tensor:
    """(H·W, K): every code equally likely at every position (the prior VQ-VAE trains with)."""
    size = len(model.quantizer.codebook)
    return torch.full((math.prod(model.code_shape[1:]), size), 1 / size, dtype=torch.float64)


@torch.inference_mode()
def sample_code_map(model, probs: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, D, H, W) quantised code maps, each position's code drawn from its row of ``probs``."""
    idx = torch.multinomial(probs, n, replacement=True, generator=generator).t()  # (n, H·W)
    codebook = model.quantizer.codebook
    dim, h, w = model.code_shape
    return codebook[idx.to(codebook.device)].view(n, h, w, dim).permute(0, 3, 1, 2).cpu()
