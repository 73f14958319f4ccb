"""Variational autoencoder (Kingma & Welling 2014), as in the Keras blog tour (SPEC 1.2).

flatten -> Dense 256 ReLU -> (mean, log-variance) of a 2-D Gaussian -> reparameterised sample
-> Dense 256 ReLU -> Dense 784 sigmoid. ``encode`` returns the mean (the code used for the
latent scatter); training samples z = mean + exp(log_var / 2) * eps.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from .. import losses
from .base import Autoencoder, Loss, Output, Units, flat_size, register_model


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
    """Loss per image = reconstruction summed over pixels + KL(q(z|x) || N(0, I)), averaged over
    the batch: the blog's ``784 * binary_crossentropy + kl_loss``. ``penalty`` and ``kl`` are
    both the KL term, so reports show the two parts."""

    def stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder[:-1](x)
        head = self.encoder[-1]
        return head.mean(h), head.log_var(h)

    loss_terms = ("loss", "recon", "penalty", "kl")
    member_settings = ()

    def latent_noise(self, n: int, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
        """The N(0, I) draws of one batch's reparameterisation, (n, latent_dim)."""
        dim = self.encoder[-1].mean.out_features
        return torch.randn((n, dim), generator=generator, device=like.device, dtype=like.dtype)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None,
             generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``eps`` (the batch's draws) is given when stacked members train as one (aelab.stacked),
        each drawn from its own generator; otherwise it is drawn here from ``generator``."""
        target = x if target is None else target
        mean, log_var = self.stats(x)
        if eps is None:
            eps = self.latent_noise(len(x), generator, mean)
        z = mean + torch.exp(0.5 * log_var) * eps
        # Per-pixel mean losses times the pixel count: the sum per image (Keras blog semantics).
        recon = self.reconstruction_loss(self.decode_raw(z), target)
        if self.loss_name != "sse":
            recon = recon * flat_size(self.input_shape)
        kl = losses.gaussian_kl(mean, log_var)
        return {"loss": recon + kl, "recon": recon, "penalty": kl, "kl": kl}


@register_model("vae", loss_terms=VAE.loss_terms)
def vae(input_shape,
        latent_dim: Annotated[Units, Field(description="dimensions of the Gaussian latent")] = 2,
        hidden: Annotated[Units, Field(description="units of the dense layer on each side")] = 256,
        loss: Loss = "bce", output: Output = "sigmoid"):
    """The blog's VAE: 784 -> 256 -> 2-D latent -> 256 -> 784, reconstruction + KL loss."""
    n_in = flat_size(input_shape)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), GaussianLatent(hidden, latent_dim))
    decoder = nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_in), nn.Unflatten(1, tuple(input_shape)),
    )
    return VAE(encoder, decoder, input_shape, output=output, loss=loss)
