"""Model registry and the one interface every autoencoder shares.

A factory registers under a kebab-case name (timm style, minus the star imports);
``create_model(name, input_shape=..., **params)`` looks it up and checks the parameters, and
``list_models("sparse*")`` filters names with fnmatch. Every model is an :class:`Autoencoder`:
``encode(x) -> z``, ``decode(z) -> x_hat``, ``forward(x)`` and ``loss(x, target)`` returning
``{"loss", "recon", "penalty"}`` so reports can show each part.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from collections.abc import Callable

import torch
from torch import nn

from .. import losses
from ..errors import ConfigError

_REGISTRY: dict[str, Callable[..., Autoencoder]] = {}
_CHECKS: dict[str, Callable[[dict], None]] = {}


def register_model(name: str, check: Callable[[dict], None] | None = None):
    """Decorator: put a factory ``fn(input_shape, **params) -> Autoencoder`` under ``name``.

    ``check(params)`` (optional) gets the parameters with defaults filled in and raises
    ConfigError for a bad combination; it builds nothing, so studies run it when they load.
    """

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        if check is not None:
            _CHECKS[name] = check
        return fn

    return deco


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_params(name: str) -> dict[str, object]:
    """The keyword parameters of a model factory with their defaults (for docs and validation)."""
    sig = inspect.signature(_factory(name))
    return {k: p.default for k, p in sig.parameters.items() if k != "input_shape"}


def check_param_names(name: str, params: dict, where: str = "") -> None:
    """Every key must be a parameter of the factory; ``where`` prefixes the key in the message
    (e.g. "models[0].params." for a study file). An unknown model lists the known ones."""
    allowed = model_params(name)
    for key in params:
        if key not in allowed:
            raise ConfigError(f"{where}{key}: model {name!r} has no such parameter; "
                              f"allowed: {', '.join(allowed) or 'none'}.")


def check_params(name: str, params: dict) -> None:
    """Run the model's cheap parameter check (if it registered one) without building it."""
    if name in _CHECKS:
        _CHECKS[name]({**model_params(name), **params})


def _factory(name: str):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"Unknown model {name!r}; choose one of: {', '.join(list_models())}."
        ) from None


def create_model(name: str, input_shape: tuple[int, ...] = (1, 28, 28), **params) -> Autoencoder:
    """Build a registered model for images of ``input_shape`` (C, H, W) with Keras-default init."""
    factory = _factory(name)
    check_param_names(name, params)
    check_params(name, params)
    model = factory(tuple(input_shape), **params)
    model.spec = {"model": name, "params": dict(params), "input_shape": list(input_shape)}
    keras_init(model)
    check_shapes(model)
    return model


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


def check_shapes(model: Autoencoder) -> None:
    """Run one dummy image through, layer by layer, so a bad architecture fails at build time
    with the name of the layer that breaks, not in the middle of training."""
    x = torch.zeros(2, *model.input_shape)
    with torch.no_grad():
        for part in ("encoder", "decoder"):
            seq = getattr(model, part)
            layers = seq.named_children() if isinstance(seq, nn.Sequential) else [("", seq)]
            for lname, layer in layers:
                try:
                    x = layer(x)
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


class Autoencoder(nn.Module):
    """encoder -> codes -> decoder (pre-activation) -> output activation.

    The decoder returns pre-activation values so BCE is computed from logits (stable and one
    fused kernel); users still get probabilities from ``decode``/``forward``.
    """

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
        if self.activity_l1:
            return losses.l1_activity(z, self.activity_l1)
        return z.new_zeros(())

    def reconstruction_loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.recon_fn(raw if self._loss_on_logits else self.activate(raw), target)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        recon = self.reconstruction_loss(self.decode_raw(z), x if target is None else target)
        penalty = self.penalty(z)
        return {"loss": recon + penalty, "recon": recon, "penalty": penalty}


def summary(model: Autoencoder) -> str:
    """Keras-style table (layer, output shape, parameters) from torchinfo."""
    import torchinfo

    stats = torchinfo.summary(
        model,
        input_size=(1, *model.input_shape),
        col_names=("output_size", "num_params"),
        row_settings=("var_names",),
        depth=3,
        verbose=0,
        device="cpu",
    )
    return str(stats)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flat_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


# Importing the model modules registers their factories (explicit, no star imports).
from . import (  # noqa: E402,F401
    conv,
    dense,  # noqa: E402,F401
    vae,
)
