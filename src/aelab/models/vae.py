"""Variational autoencoders (Kingma & Welling 2014): the Keras blog's dense VAE (SPEC 1.2), β-VAE
(Higgins et al. 2017) and a convolutional VAE (SPEC 1.6).

The dense ``vae`` is flatten -> Dense 256 ReLU -> (mean, log-variance) of a 2-D Gaussian ->
reparameterised sample -> Dense 256 ReLU -> Dense 784 sigmoid. ``encode`` returns the mean (the
code used for the latent scatter); training samples z = mean + exp(log_var / 2) * eps.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from .. import losses
from .base import Autoencoder, Loss, Output, Units, flat_size, register_model

Beta = Annotated[float, Field(ge=0, le=1e4, description=(
    "weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the plain VAE"))]
Likelihood = Annotated[Literal["bernoulli", "gaussian"], Field(description=(
    "decoder distribution p(x|z): bernoulli (binary cross-entropy summed over pixels) or "
    "gaussian (mean = sigmoid output, one learned variance for all pixels: the σ-VAE of "
    "Rybkin et al. 2021); both in nats per image"))]


class GaussianLatent(nn.Module):
    """Dense layer giving the mean and log-variance of q(z|x); as a layer it outputs the mean,
    so the encoder stays an nn.Sequential whose output the decoder takes."""

    def __init__(self, n_in: int, latent_dim: int):
        super().__init__()
        self.mean = nn.Linear(n_in, latent_dim)
        self.log_var = nn.Linear(n_in, latent_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.mean(h)


class VAE(Autoencoder):
    """Loss per image = reconstruction summed over pixels + β · KL(q(z|x) || N(0, I)), averaged
    over the batch: with β = 1 and BCE, the blog's ``784 * binary_crossentropy + kl_loss``.
    ``penalty`` is β · KL and ``kl`` the KL itself, so reports show both.

    ``likelihood`` None keeps the reconstruction loss of ``loss`` (the blog's semantics);
    "gaussian" replaces it by -log N(x; sigmoid(raw), σ²) with a learned scalar log σ.
    """

    loss_terms = ("loss", "recon", "penalty", "kl")
    member_settings = ("beta",)

    def __init__(self, encoder, decoder, input_shape, beta: float = 1.0,
                 likelihood: str | None = None, **kwargs):
        super().__init__(encoder, decoder, input_shape, **kwargs)
        self.beta, self.likelihood = float(beta), likelihood
        if likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))

    def stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (N, latent_dim)."""
        h = self.encoder[:-1](x)
        head = self.encoder[-1]
        return head.mean(h), head.log_var(h)

    def latent_noise(self, n: int, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
        """The N(0, I) draws of one batch's reparameterisation, (n, latent_dim)."""
        dim = self.encoder[-1].mean.out_features
        return torch.randn((n, dim), generator=generator, device=like.device, dtype=like.dtype)

    def log_likelihood(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats per image, (N,), from the decoder's pre-activation output ``raw``."""
        if self.likelihood == "gaussian":
            var = torch.exp(2 * self.log_sigma)
            sq = (x - torch.sigmoid(raw)).square().flatten(1).sum(1)
            return -0.5 * sq / var - flat_size(self.input_shape) * (self.log_sigma + 0.5 * math.log(2 * math.pi))
        if self.loss_name != "bce":
            raise ValueError(f"A VAE trained with loss {self.loss_name!r} has no decoder likelihood; "
                             "use beta-vae with decoder = 'gaussian' for grey levels.")
        return -F.binary_cross_entropy_with_logits(raw, x, reduction="none").flatten(1).sum(1)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None,
             generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``eps`` (the batch's draws) is given when stacked members train as one (aelab.stacked),
        each drawn from its own generator; otherwise it is drawn here from ``generator``."""
        target = x if target is None else target
        mean, log_var = self.stats(x)
        if eps is None:
            eps = self.latent_noise(len(x), generator, mean)
        z = mean + torch.exp(0.5 * log_var) * eps
        raw = self.decode_raw(z)
        if self.likelihood == "gaussian":
            recon = -self.log_likelihood(target, raw).mean()
        else:
            # Per-pixel mean losses times the pixel count: the sum per image (Keras blog semantics).
            recon = self.reconstruction_loss(raw, target)
            if self.loss_name != "sse":
                recon = recon * flat_size(self.input_shape)
        kl = losses.gaussian_kl(mean, log_var)
        penalty = self.beta * kl
        return {"loss": recon + penalty, "recon": recon, "penalty": penalty, "kl": kl}


def _dense_vae(input_shape, latent_dim: int, hidden: int, **kwargs) -> VAE:
    n_in = flat_size(input_shape)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), GaussianLatent(hidden, latent_dim))
    decoder = nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_in), nn.Unflatten(1, tuple(input_shape)),
    )
    return VAE(encoder, decoder, input_shape, **kwargs)


LatentDim = Annotated[Units, Field(description="dimensions of the Gaussian latent")]
HiddenUnits = Annotated[Units, Field(description="units of the dense layer on each side")]


@register_model("vae", loss_terms=VAE.loss_terms)
def vae(input_shape, latent_dim: LatentDim = 2, hidden: HiddenUnits = 256,
        loss: Loss = "bce", output: Output = "sigmoid"):
    """The blog's VAE: 784 -> 256 -> 2-D latent -> 256 -> 784, reconstruction + KL loss."""
    return _dense_vae(input_shape, latent_dim, hidden, output=output, loss=loss)


@register_model("beta-vae", loss_terms=VAE.loss_terms, member_params=("beta",))
def beta_vae(input_shape, latent_dim: LatentDim = 2, hidden: HiddenUnits = 256, beta: Beta = 1.0,
             decoder: Likelihood = "bernoulli"):
    """The blog's VAE with a KL weight β and a Bernoulli or Gaussian decoder (β = 1 and
    bernoulli: exactly ``vae``)."""
    return _dense_vae(input_shape, latent_dim, hidden, beta=beta,
                      likelihood=None if decoder == "bernoulli" else decoder)


def _side_plan(shape: tuple[int, ...], n: int) -> list[int]:
    """Strides of the ``n`` encoder convs: 2 while both sides stay even, then 1 (28 -> 14 -> 7,
    32 -> 16 -> 8, 8 -> 4 -> 2, 7 -> 7 -> 7), so any image size builds."""
    h, w, strides = shape[1], shape[2], []
    for _ in range(n):
        s = 2 if h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4 else 1
        strides.append(s)
        h, w = h // s, w // s
    return strides


def _conv(c_in: int, c_out: int, stride: int, transposed: bool = False) -> nn.Module:
    # 4×4 stride 2 pad 1 halves (or, transposed, doubles) a side exactly; 3×3 pad 1 keeps it.
    kind = nn.ConvTranspose2d if transposed else nn.Conv2d
    return kind(c_in, c_out, 4, 2, 1) if stride == 2 else kind(c_in, c_out, 3, 1, 1)


@register_model("conv-vae", loss_terms=VAE.loss_terms, member_params=("beta",))
def conv_vae(input_shape,
             latent_dim: LatentDim = 16, hidden: HiddenUnits = 256,
             filters: Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(
                 min_length=1, max_length=4, description=(
                     "filters of the encoder convs (4×4 stride 2 while sides stay even); the "
                     "decoder mirrors them with transposed convs"))] = (32, 64),
             beta: Beta = 1.0, decoder: Likelihood = "bernoulli"):
    """Convolutional VAE: strided convs -> dense -> Gaussian latent -> dense -> transposed convs
    (28×28 -> 7×7×64 and back with the defaults)."""
    c, strides = input_shape[0], _side_plan(input_shape, len(filters))
    side = (input_shape[1] // math.prod(strides), input_shape[2] // math.prod(strides))
    chans = [c, *filters]
    enc: list[nn.Module] = []
    for a, b, s in zip(chans[:-1], chans[1:], strides):
        enc += [_conv(a, b, s), nn.ReLU()]
    n_flat = filters[-1] * side[0] * side[1]
    enc += [nn.Flatten(), nn.Linear(n_flat, hidden), nn.ReLU(), GaussianLatent(hidden, latent_dim)]
    dec: list[nn.Module] = [nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_flat), nn.ReLU(),
                            nn.Unflatten(1, (filters[-1], *side))]
    back = chans[::-1]
    for i, (a, b, s) in enumerate(zip(back[:-1], back[1:], strides[::-1])):
        dec += [_conv(a, b, s, transposed=True)] + ([nn.ReLU()] if i < len(strides) - 1 else [])
    return VAE(nn.Sequential(*enc), nn.Sequential(*dec), input_shape, beta=beta,
               likelihood=None if decoder == "bernoulli" else decoder)
