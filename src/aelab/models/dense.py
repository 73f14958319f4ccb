"""Fully connected autoencoders: stacked (SPEC 1.1), with an optional L1 activity penalty;
KL-sparse and k-sparse (SPEC 1.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from .. import losses
from ..callbacks import Callback
from ..errors import ConfigError
from .base import (
    Activation,
    ActivityL1,
    Autoencoder,
    Hidden,
    Loss,
    Output,
    Units,
    flat_size,
    register_model,
)

CodeSize = Annotated[int, Field(ge=1, le=1_000_000, description="number of code units")]

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}


def _activation(name: str, what: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(
            f"Unknown {what} {name!r}; choose one of: {', '.join(ACTIVATIONS)}."
        ) from None


def dense_autoencoder(
    input_shape: tuple[int, ...],
    hidden: Sequence[int],
    activation: str = "relu",
    code_activation: str = "relu",
    activity_l1: float = 0.0,
    loss: str = "bce",
    output: str = "sigmoid",
) -> Autoencoder:
    """flatten -> hidden[0] -> ... -> hidden[-1] (codes) -> mirrored decoder -> reshape.

    ``hidden=(256, 50)`` gives 784-256-50-256-784, the stacked autoencoder of SPEC 1.1.
    """
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ConfigError(f"hidden must be a non-empty list of positive sizes, got {hidden}.")
    n_in = flat_size(input_shape)
    enc: list[nn.Module] = [nn.Flatten()]
    sizes = [n_in, *hidden]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(hidden) - 1
        enc += [nn.Linear(a, b), _activation(code_activation if last else activation, "activation")]
    dec: list[nn.Module] = []
    back = [*hidden[::-1], n_in]
    for a, b in zip(back[:-1], back[1:]):
        dec.append(nn.Linear(a, b))
        if b != n_in:
            dec.append(_activation(activation, "activation"))
    dec.append(nn.Unflatten(1, tuple(input_shape)))
    return Autoencoder(
        nn.Sequential(*enc), nn.Sequential(*dec), input_shape,
        output=output, loss=loss, activity_l1=activity_l1,
    )


@register_model("stacked", member_params=("activity_l1",))
def stacked(
    input_shape,
    hidden: Hidden = (256, 50),
    activation: Activation = "relu",
    code_activation: Annotated[Activation, Field(description="activation of the code layer")] = "relu",
    activity_l1: ActivityL1 = 0.0,
    loss: Loss = "bce",
    output: Output = "sigmoid",
):
    """Stacked autoencoder, 784-256-50-256-784 by default; ``activity_l1`` makes it sparse."""
    return dense_autoencoder(input_shape, hidden, activation, code_activation, activity_l1, loss, output)


@register_model("stacked-sparse", member_params=("activity_l1",))
def stacked_sparse(
    input_shape,
    hidden: Hidden = (256, 50),
    activity_l1: ActivityL1 = 1e-6,
    activation: Activation = "relu",
    loss: Loss = "bce",
    output: Output = "sigmoid",
):
    """The stacked autoencoder with an L1 activity penalty (Keras semantics) on the codes."""
    return dense_autoencoder(input_shape, hidden, activation, "relu", activity_l1, loss, output)


# ---------------------------------------------------------------- the Keras blog tour (SPEC 1.2)


@register_model("simple")
def simple(input_shape, code_size: CodeSize = 32, loss: Loss = "bce", output: Output = "sigmoid"):
    """784 -> Dense 32 ReLU -> Dense 784 sigmoid: the Keras blog's simplest autoencoder."""
    return dense_autoencoder(input_shape, (code_size,), loss=loss, output=output)


@register_model("sparse-l1", member_params=("activity_l1",))
def sparse_l1(input_shape, code_size: CodeSize = 32, activity_l1: ActivityL1 = 1e-4,
              loss: Loss = "bce", output: Output = "sigmoid"):
    """``simple`` with an L1 activity penalty on the code (the blog's weight 1e-4, Keras semantics)."""
    return dense_autoencoder(input_shape, (code_size,), activity_l1=activity_l1, loss=loss, output=output)


@register_model("deep")
def deep(input_shape, hidden: Hidden = (128, 64, 32), activation: Activation = "relu",
         loss: Loss = "bce", output: Output = "sigmoid"):
    """784-128-64-32-64-128-784, ReLU inside, sigmoid output: the blog's deep autoencoder."""
    return dense_autoencoder(input_shape, hidden, activation, activation, loss=loss, output=output)


# ---------------------------------------------------------------- sparse codes (SPEC 1.3)


class KLSparseAutoencoder(Autoencoder):
    """Sigmoid codes pulled towards a mean activation rho: penalty beta * sum_j KL(rho || rho_hat_j)."""

    member_settings = ("rho", "beta")

    def __init__(self, encoder, decoder, input_shape, rho: float, beta: float, **kwargs):
        super().__init__(encoder, decoder, input_shape, **kwargs)
        self.rho, self.beta = float(rho), float(beta)

    def penalty(self, z: torch.Tensor) -> torch.Tensor:
        return losses.kl_sparsity(z, self.rho, self.beta)


@register_model("sparse-kl", member_params=("rho", "beta"))
def sparse_kl(
    input_shape,
    hidden: Hidden = (512,),
    rho: Annotated[float, Field(gt=0, lt=1, description="target mean activation of each code unit")] = 0.05,
    beta: Annotated[float, Field(ge=0, le=1e3, description=(
        "weight of the summed KL terms (BCE is a per-pixel mean here, so it is small)"))] = 0.01,
    activation: Activation = "relu",
    loss: Loss = "bce",
    output: Output = "sigmoid",
):
    """Dense autoencoder with sigmoid codes and the KL sparsity penalty (UFLDL sparse autoencoder)."""
    base = dense_autoencoder(input_shape, hidden, activation, "sigmoid", 0.0, loss, output)
    return KLSparseAutoencoder(base.encoder, base.decoder, input_shape, rho, beta,
                               output=output, loss=loss)


def keep_top_k(z: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """Zero all but the k largest entries of each row of (N, D) codes.

    The kept values are scattered into zeros, so the gradient flows only through them. A tensor
    ``k`` (a stacked member's, one per member under vmap) keeps the entries at least as large as
    the k-th largest: the same units and gradient unless two codes tie exactly.
    """
    if isinstance(k, torch.Tensor):
        kth = z.sort(dim=1, descending=True).values.gather(1, (k - 1).expand(z.shape[0], 1))
        return z * (z >= kth)
    if k >= z.shape[1]:
        return z
    values, index = z.topk(k, dim=1)
    return torch.zeros_like(z).scatter(1, index, values)


class TiedLinear(nn.Module):
    """The transpose of another Linear layer's weight, plus a bias of its own (tied weights)."""

    def __init__(self, source: nn.Linear):
        super().__init__()
        # A plain reference, not a submodule: registering it would list the shared weight twice
        # in state_dict (and checkpoints refuse tensors that share memory).
        self.__dict__["source"] = source
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.linear(z, self.source.weight.t(), self.bias)


class KSparseAutoencoder(Autoencoder):
    """Makhzani & Frey (2013): linear codes of which only the k largest per sample survive.

    ``encode`` in eval mode keeps the alpha·k largest: the paper's features for classification.
    Reconstructions (the loss, training and validation alike, figures, novelty scores) always use
    the k units the decoder was trained on, so validation loss measures what training optimises
    instead of reading high because of the extra alpha·k units.

    With ``k_start``, k falls linearly from k_start to k over the first half of the epochs, the
    paper's remedy for units that never win the top k (the :class:`KSchedule` callback).
    """

    member_settings = ("k_train",)

    def __init__(self, encoder, decoder, input_shape, k: int, alpha: float = 1.0,
                 k_start: int | None = None, **kwargs):
        super().__init__(encoder, decoder, input_shape, **kwargs)
        self.k, self.alpha, self.k_start = int(k), float(alpha), k_start
        self.k_train = self.k  # the k of the current epoch; moved by KSchedule

    @property
    def k_eval(self) -> int:
        return round(self.alpha * self.k)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return keep_top_k(self.encoder(x), self.k_train if self.training else self.k_eval)

    def reconstruct_raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_raw(keep_top_k(self.encoder(x), self.k_train))

    def loss(self, x, target=None, generator=None):
        recon = self.reconstruction_loss(self.reconstruct_raw(x), x if target is None else target)
        return {"loss": recon, "recon": recon, "penalty": recon.new_zeros(())}

    def callbacks(self) -> list:
        return [] if self.k_start is None else [KSchedule(self)]


class KSchedule(Callback):
    """k falls linearly from k_start at epoch 1 to k at mid-training, then stays (k-sparse)."""

    def __init__(self, model: KSparseAutoencoder):
        self.model = model

    def on_epoch_start(self, state) -> None:
        m = self.model
        done = min((state.epoch - 1) / max(state.epochs // 2, 1), 1.0)
        m.k_train = round(m.k_start + (m.k - m.k_start) * done)

    def on_fit_end(self, state) -> None:
        self.model.k_train = self.model.k  # what the model was built to keep, whatever stopped it


def _check_k_sparse(p: dict) -> None:
    hidden = [int(h) for h in p["hidden"]]
    size, k = hidden[-1], p["k"]
    if not 1 <= k <= size:
        raise ConfigError(f"k = {k} is not allowed; keep between 1 and the code size {size}.")
    if not 1 <= round(p["alpha"] * k) <= size:
        raise ConfigError(f"alpha = {p['alpha']} gives alpha·k = {p['alpha'] * k:g} units at encoding "
                          f"time; it must be positive and at most the code size {size}.")
    if p["k_start"] is not None and not k <= p["k_start"] <= size:
        raise ConfigError(f"k_start = {p['k_start']} is not allowed; use a value from k = {k} "
                          f"to the code size {size}.")
    if p["tied"] and len(hidden) != 1:
        raise ConfigError(f"tied = true needs a single hidden layer, got hidden = {hidden}.")


@register_model("k-sparse", check=_check_k_sparse, member_params=("k", "alpha", "k_start"))
def k_sparse(
    input_shape,
    hidden: Hidden = (512,),
    k: Annotated[Units, Field(description="code units kept per sample in training")] = 25,
    alpha: Annotated[float, Field(gt=0, le=1e3, description=(
        "alpha·k units are kept when encoding in eval mode (features for probes)"))] = 1.0,
    k_start: Annotated[Units | None, Field(description=(
        "if set, k falls linearly from this to k over the first half of training"))] = None,
    tied: Annotated[bool, Field(description=(
        "decoder weight = encoder weight transposed (single hidden layer)"))] = False,
    activation: Activation = "relu",
    loss: Loss = "bce",
    output: Output = "sigmoid",
):
    """k-sparse autoencoder: linear codes, top-k selection, optional tied weights."""
    base = dense_autoencoder(input_shape, hidden, activation, "linear", 0.0, loss, output)
    decoder = base.decoder
    if tied:
        decoder = nn.Sequential(TiedLinear(base.encoder[1]), nn.Unflatten(1, tuple(input_shape)))
    return KSparseAutoencoder(base.encoder, decoder, input_shape, k, alpha, k_start,
                              output=output, loss=loss)
