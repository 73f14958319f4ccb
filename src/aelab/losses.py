"""Loss terms as pure functions of tensors, with the Keras semantics the reference studies use.

Reconstruction losses take the decoder's *pre-activation* output. For sigmoid outputs that is the
logit, so BCE runs through the fused, numerically stable ``binary_cross_entropy_with_logits``;
Keras does the same when the last layer is a sigmoid (it reads the logits back from the op).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ConfigError


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy per pixel, from logits (Keras ``binary_crossentropy``)."""
    return F.binary_cross_entropy_with_logits(logits, target)


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel."""
    return F.mse_loss(out, target)


def sse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors per image, averaged over the batch (the "sum of L2 losses")."""
    return F.mse_loss(out, target, reduction="sum") / out.shape[0]


def l1_activity(codes: torch.Tensor, weight: float) -> torch.Tensor:
    """Keras ``activity_regularizer=l1(w)``: w * sum|codes| per sample, averaged over the batch."""
    return weight * codes.abs().sum() / codes.shape[0]


def kl_sparsity(codes: torch.Tensor, rho: float, beta: float) -> torch.Tensor:
    """beta * sum_j KL(rho || rho_hat_j), rho_hat_j = mean activation of unit j over the batch.

    Codes must lie in (0, 1) (sigmoid units); rho_hat is clamped away from 0 and 1 so a dead or
    saturated unit gives a large but finite penalty.
    """
    rho_hat = codes.mean(0).clamp(1e-7, 1 - 1e-7)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return beta * kl.sum()


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) summed over latent dims, averaged over the batch."""
    return -0.5 * torch.sum(1 + log_var - mean.square() - log_var.exp()) / mean.shape[0]


# name -> (function, whether it takes logits of a sigmoid output)
RECONSTRUCTION = {"bce": (bce, True), "mse": (mse, False), "sse": (sse, False)}


def reconstruction(name: str):
    """Look up a reconstruction loss; an unknown name lists the known ones."""
    try:
        return RECONSTRUCTION[name]
    except KeyError:
        known = ", ".join(sorted(RECONSTRUCTION))
        raise ConfigError(f"Unknown loss {name!r}; choose one of: {known}.") from None
