"""The one interface every autoencoder shares, and the declared types of common parameters.

Every model is an :class:`Autoencoder`: ``encode(x) -> z``, ``decode(z) -> x_hat``,
``forward(x)`` and ``loss(x, target)`` returning ``{"loss", "recon", "penalty"}`` so reports can
show each part. Factories annotate their parameters with the types below (see ``aelab.params``),
so a study's ``params`` table is checked, and documented, from the signature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from .. import losses
from ..errors import ConfigError
from ..registry import MODELS


@dataclass(frozen=True)
class ModelInfo:
    """What the model registry knows of a factory besides its signature."""

    check: Callable[[dict], None] | None = None  # raises ConfigError for a bad combination of params
    loss_terms: tuple[str, ...] = ("loss", "recon", "penalty")  # keys of loss(): train_<t>, val_<t>
    # Params that may differ between runs trained as one stack (aelab.stacked): they change no
    # parameter shape, and the model reads them through ``member_settings`` or callbacks.
    member_params: tuple[str, ...] = ()
    # False for models whose training changes state outside their parameters (VQ-VAE's EMA
    # codebook, dead-code restarts): vmap over functional parameters cannot carry it.
    stackable: bool = True


def register_model(name: str, check: Callable[[dict], None] | None = None,
                   loss_terms: tuple[str, ...] = ModelInfo.loss_terms, member_params: tuple[str, ...] = (),
                   stackable: bool = True):
    """Decorator: put a factory ``fn(input_shape, **params) -> Autoencoder`` under ``name``.

    ``check(params)`` (optional) gets the validated parameters with defaults filled in and
    raises ConfigError for a bad combination; it builds nothing, so studies run it at load.
    """
    return MODELS.register(name, ModelInfo(check, loss_terms, member_params, stackable))


# Declared parameter types shared by the factories (checked by aelab.params.validate).
Units = Annotated[int, Field(ge=1, le=1_000_000)]
Hidden = Annotated[list[Units], Field(min_length=1, max_length=64, description=(
    "sizes of the encoder's dense layers; the last one is the code (the decoder mirrors them)"))]
Activation = Annotated[Literal["relu", "sigmoid", "tanh", "linear"], Field(
    description="activation of the hidden layers")]
Loss = Annotated[Literal[tuple(losses.RECONSTRUCTION)], Field(
    description="reconstruction loss: bce (binary cross-entropy per pixel), mse (mean squared "
                "error per pixel) or sse (sum of squared errors per image)")]
Output = Annotated[Literal["sigmoid", "linear"], Field(
    description="output activation; bce needs sigmoid")]
ActivityL1 = Annotated[float, Field(ge=0, le=1e3, description=(
    "weight of the L1 activity penalty on the codes, Keras semantics: weight × sum|codes| per "
    "sample, averaged over the batch, added to the loss"))]


def keras_init(model: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases, for dense and (transposed) conv layers.

    torch's xavier_uniform_ uses the same fans as Keras (receptive field × channels), so the
    weight distributions match Keras exactly.
    """
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_shapes(model: Autoencoder, batch: int = 2) -> int:
    """Run a dummy batch through, layer by layer, so a bad architecture fails at build time
    with the name of the layer that breaks, not in the middle of training.

    Returns the number of activation values the batch produced (what training keeps for the
    backward pass; see ``models.inspect_model``).
    """
    x = torch.zeros(batch, *model.input_shape, device=_device(model))
    activations = 0
    with torch.no_grad():
        for part in ("encoder", "decoder"):
            seq = getattr(model, part)
            layers = seq.named_children() if isinstance(seq, nn.Sequential) else [("", seq)]
            for lname, layer in layers:
                try:
                    x = layer(x)
                    activations += x.numel()
                except RuntimeError as err:
                    first = str(err).strip().splitlines()[0]
                    raise ConfigError(
                        f"Model {model.spec['model']!r}: {part} layer {lname} "
                        f"({layer.__class__.__name__}) cannot take input of shape "
                        f"{tuple(x.shape[1:])} ({first})."
                    ) from None
            if part == "encoder":
                model.code_shape = tuple(x.shape[1:])
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ConfigError(
            f"Model {model.spec['model']!r} maps input {tuple(model.input_shape)} to "
            f"{tuple(x.shape[1:])}; change its layers so the decoder's last layer "
            "outputs the input shape."
        )
    return activations


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class Autoencoder(nn.Module):
    """encoder -> codes -> decoder (pre-activation) -> output activation.

    The decoder returns pre-activation values so BCE is computed from logits (stable and one
    fused kernel); users still get probabilities from ``decode``/``forward``.
    """

    loss_terms = ("loss", "recon", "penalty")  # the keys of loss(): train_<term>, val_<term>
    # Number attributes the loss reads that may differ between members of a stacked group
    # (aelab.stacked): it sets them to per-member tensors while the members train as one.
    member_settings: tuple[str, ...] = ("activity_l1",)

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        input_shape: tuple[int, ...],
        output: str = "sigmoid",  # "sigmoid" or "linear"
        loss: str = "bce",  # a name in losses.RECONSTRUCTION
        activity_l1: float = 0.0,  # Keras L1 activity penalty on the codes
    ):
        super().__init__()
        if output not in ("sigmoid", "linear"):
            raise ConfigError(f"Unknown output activation {output!r}; use 'sigmoid' or 'linear'.")
        self.recon_fn, from_logits = losses.reconstruction(loss)
        if loss == "bce" and output != "sigmoid":
            raise ConfigError("Loss 'bce' needs output = 'sigmoid' (probabilities in [0, 1]).")
        if activity_l1 < 0:
            raise ConfigError(f"activity_l1 must be >= 0, got {activity_l1}.")
        self.encoder, self.decoder = encoder, decoder
        self.input_shape = tuple(input_shape)
        self.output, self.loss_name, self.activity_l1 = output, loss, float(activity_l1)
        # BCE takes logits; MSE/SSE compare the activated output with the target.
        self._loss_on_logits = from_logits and output == "sigmoid"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def activate(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) if self.output == "sigmoid" else raw

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.activate(self.decode_raw(z))

    def reconstruct_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation reconstruction of ``x``: what the loss, figures and novelty scores use."""
        return self.decode_raw(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.reconstruct_raw(x))

    def penalty(self, z: torch.Tensor) -> torch.Tensor:
        """Regulariser on the codes; part of both training and validation loss, as in Keras."""
        if isinstance(self.activity_l1, torch.Tensor) or self.activity_l1:  # a tensor when stacked
            return losses.l1_activity(z, self.activity_l1)
        return z.new_zeros(())

    def reconstruction_loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.recon_fn(raw if self._loss_on_logits else self.activate(raw), target)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The loss parts of a batch; ``generator`` drives any sampling (fit passes its own, so
        training never touches the global RNG)."""
        z = self.encode(x)
        recon = self.reconstruction_loss(self.decode_raw(z), x if target is None else target)
        penalty = self.penalty(z)
        return {"loss": recon + penalty, "recon": recon, "penalty": penalty}

    def callbacks(self) -> list:
        """Training callbacks the model needs (e.g. k-sparse's falling k); fit adds them."""
        return []


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flat_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
