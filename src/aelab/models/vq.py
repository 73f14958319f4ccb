"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning"), SPEC 1.6.

conv encoder (28 -> 14 -> 7) -> z_e (N, D, 7, 7) -> nearest codebook vector per position ->
z_q -> conv decoder. Gradients pass the quantiser straight through (z_e + sg[z_q - z_e]); the
codebook learns either from ||sg[z_e] - e||² (the paper's eq. 3) or, with ``ema``, by
exponential moving averages of the encoder outputs assigned to each code (the paper's appendix
A.1, as in Sonnet's ``VectorQuantizerEMA``). Codes unused for a whole epoch are re-initialised
from random encoder outputs (:class:`CodebookRestarts`), which keeps the codebook in use.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..callbacks import Callback
from .base import Autoencoder, Loss, Output, register_model
from .vae import _conv, _side_plan


class Quantizer(nn.Module):
    """Nearest-neighbour quantisation of (N, D, H, W) vectors against a (K, D) codebook.

    As a layer it returns z_q with the straight-through gradient, so the encoder stays an
    nn.Sequential whose output the decoder takes. With ``ema`` the codebook is a buffer moved by
    :meth:`ema_update`; otherwise a parameter learned through the codebook loss.
    """

    def __init__(self, size: int, dim: int, ema: bool, decay: float = 0.99, epsilon: float = 1e-5):
        super().__init__()
        self.ema, self.decay, self.epsilon = ema, float(decay), float(epsilon)
        init = torch.empty(size, dim).uniform_(-1 / size, 1 / size)  # as the paper's reference code
        if ema:
            self.register_buffer("codebook", init)
            # As if each code had been assigned once at its initial place: codebook = sum / count.
            self.register_buffer("cluster_size", torch.ones(size))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # Assignments per code since the last reset (CodebookRestarts resets it every epoch).
        self.register_buffer("usage", torch.zeros(size), persistent=False)

    def indices(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of (M, D): argmin |z|² - 2 z·e + |e|²."""
        e = self.codebook
        d = flat.square().sum(1, keepdim=True) - 2 * flat @ e.t() + e.square().sum(1)
        return d.argmin(1)

    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z_q, flat z_e (M, D), code indices (M,)) for z_e (N, D, H, W); z_q has no gradient
        path to the encoder (add it with :func:`straight_through`)."""
        n, dim, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, dim)
        idx = self.indices(flat.detach())
        z_q = self.codebook[idx].view(n, h, w, dim).permute(0, 3, 1, 2)
        return z_q, flat, idx

    def forward(self, z_e: torch.Tensor) -> torch.Tensor:
        return straight_through(z_e, self.quantize(z_e)[0])

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        """N_i <- γN_i + (1-γ)n_i, m_i <- γm_i + (1-γ)Σ z_e assigned to i, e_i = m_i / Ñ_i with
        Laplace-smoothed counts Ñ_i = (N_i + ε) / (ΣN + Kε) · ΣN (van den Oord 2017, A.1)."""
        onehot = F.one_hot(idx, len(self.codebook)).to(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat.detach(), alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + len(self.codebook) * self.epsilon) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def restart(self, dead: torch.Tensor, flat: torch.Tensor, generator: torch.Generator) -> None:
        """Put each code in ``dead`` (bool, K) on a random row of the encoder outputs ``flat``."""
        rows = torch.randint(len(flat), (int(dead.sum()),), generator=generator).to(flat.device)
        self.codebook[dead] = flat[rows].to(self.codebook.dtype)
        if self.ema:
            self.embed_sum[dead] = flat[rows].to(self.codebook.dtype)
            self.cluster_size[dead] = 1.0


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_q in the forward pass, the identity's gradient to z_e in the backward pass."""
    return z_e + (z_q - z_e).detach()


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of code usage: K when all K codes are used equally, 1 when one code is."""
    p = counts / counts.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class VQVAE(Autoencoder):
    """Loss = reconstruction + codebook + β · commitment (the paper's eq. 3), with the
    reconstruction as for the other autoencoders (``loss``: per-pixel mean BCE by default) and the
    codebook and commitment terms as mean squared errors per element. ``penalty`` is the sum of
    the two latent terms; ``perplexity`` of the batch's code usage is reported beside them."""

    loss_terms = ("loss", "recon", "penalty", "codebook", "commitment", "perplexity")
    member_settings = ()

    def __init__(self, encoder, decoder, input_shape, commitment: float = 0.25, **kwargs):
        super().__init__(encoder, decoder, input_shape, **kwargs)
        self.commitment = float(commitment)
        self.last_encodings: torch.Tensor | None = None  # the last training batch's z_e rows, for restarts

    @property
    def quantizer(self) -> Quantizer:
        return self.encoder[-1]

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code indices of ``x``: (N, H', W') integers below the codebook size."""
        z_e = self.encoder[:-1](x)
        n, _, h, w = z_e.shape
        return self.quantizer.quantize(z_e)[2].view(n, h, w)

    def loss(self, x, target=None, generator=None) -> dict[str, torch.Tensor]:
        q = self.quantizer
        z_e = self.encoder[:-1](x)
        z_q, flat, idx = q.quantize(z_e)
        recon = self.reconstruction_loss(self.decode_raw(straight_through(z_e, z_q)),
                                         x if target is None else target)
        commitment = F.mse_loss(z_e, z_q.detach())
        codebook = z_e.new_zeros(()) if q.ema else F.mse_loss(z_q, z_e.detach())
        counts = torch.bincount(idx, minlength=len(q.codebook)).to(flat.dtype)
        if self.training:
            q.usage += counts
            self.last_encodings = flat.detach()
            if q.ema:
                q.ema_update(flat, idx)
        penalty = codebook + self.commitment * commitment
        return {"loss": recon + penalty, "recon": recon, "penalty": penalty, "codebook": codebook,
                "commitment": commitment, "perplexity": perplexity(counts)}

    def callbacks(self) -> list:
        return [CodebookRestarts(self)]


class CodebookRestarts(Callback):
    """Each epoch: count code usage, and add ``codebook_perplexity`` (of the epoch's usage),
    ``codebook_used`` and ``codebook_restarts`` to the epoch record; the codes no training batch
    used are put on random encoder outputs of the epoch's last batch when the next epoch starts.

    Restarting at the next start, not at this end, keeps the model that was validated as the
    run's model (after the last epoch nothing changes it). The pending restart is part of the
    callback's state, so a resumed run restarts the same codes the same way (the draws come from
    a generator seeded by the run's seed and the epoch)."""

    def __init__(self, model: VQVAE):
        self.model = model
        self.pending: dict = {}  # {"dead": (K,) bool, "rows": encoder outputs, "epoch": int}

    def on_epoch_start(self, state) -> None:
        q = self.model.quantizer
        if self.pending:
            seed = getattr(state.config, "seed", 0) * 100_003 + int(self.pending["epoch"])
            q.restart(self.pending["dead"].to(q.usage.device), self.pending["rows"],
                      torch.Generator().manual_seed(seed))
            self.pending = {}
        q.usage.zero_()

    def on_epoch_end(self, state, record) -> None:
        q, flat = self.model.quantizer, self.model.last_encodings
        dead = q.usage == 0
        record["codebook_perplexity"] = perplexity(q.usage).item()
        record["codebook_used"] = int((~dead).sum())
        record["codebook_restarts"] = int(dead.sum()) if flat is not None else 0
        if flat is not None and dead.any():
            self.pending = {"dead": dead.clone(), "rows": flat.clone(), "epoch": state.epoch}

    def state_dict(self) -> dict:
        return dict(self.pending)

    def load_state_dict(self, state: dict) -> None:
        self.pending = dict(state)


@register_model("vq-vae", loss_terms=VQVAE.loss_terms, stackable=False)
def vq_vae(input_shape,
           codebook_size: Annotated[int, Field(ge=2, le=65_536, description="number of codes K")] = 128,
           code_dim: Annotated[int, Field(ge=1, le=4096, description="dimension D of each code")] = 16,
           commitment: Annotated[float, Field(ge=0, le=100, description=(
               "weight β of the commitment loss ||z_e - sg[e]||² (the paper's 0.25)"))] = 0.25,
           ema: Annotated[bool, Field(description=(
               "learn the codebook by exponential moving averages instead of the codebook loss"))] = True,
           decay: Annotated[float, Field(ge=0, lt=1, description="EMA decay γ of the codebook")] = 0.99,
           filters: Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(
               min_length=1, max_length=4, description=(
                   "filters of the encoder convs (4×4 stride 2 while sides stay even); the "
                   "decoder mirrors them with transposed convs"))] = (32, 64),
           loss: Loss = "bce", output: Output = "sigmoid"):
    """VQ-VAE: strided convs (28 -> 7) -> 1×1 conv to D -> nearest of K codes -> transposed convs."""
    c, strides = input_shape[0], _side_plan(input_shape, len(filters))
    chans = [c, *filters]
    enc: list[nn.Module] = []
    for a, b, s in zip(chans[:-1], chans[1:], strides):
        enc += [_conv(a, b, s), nn.ReLU()]
    enc += [nn.Conv2d(filters[-1], code_dim, 1), Quantizer(codebook_size, code_dim, ema, decay)]
    dec: list[nn.Module] = [nn.Conv2d(code_dim, filters[-1], 3, padding=1), nn.ReLU()]
    back = chans[::-1]
    for i, (a, b, s) in enumerate(zip(back[:-1], back[1:], strides[::-1])):
        dec += [_conv(a, b, s, transposed=True)] + ([nn.ReLU()] if i < len(strides) - 1 else [])
    return VQVAE(nn.Sequential(*enc), nn.Sequential(*dec), input_shape, commitment,
                 loss=loss, output=output)
