"""The model zoo: ``create_model(name, input_shape, seed=..., **params)`` and friends.

Factories register in ``aelab.registry.MODELS`` under a kebab-case name (timm style, minus the
star imports); importing this package imports the modules that define them. Parameters are
checked from each factory's annotations (``aelab.params``) plus an optional ``check`` hook for
combinations, so a study validates its models when it loads, before any data is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..params import validate
from ..registry import MODELS, import_modules
from .base import (
    Autoencoder,
    ModelInfo,
    check_shapes,
    count_parameters,
    flat_size,
    keras_init,
    register_model,
)

__all__ = ["Autoencoder", "ModelInfo", "create_model", "list_models", "model_params", "check_params",
           "inspect_model", "count_parameters", "flat_size", "register_model"]


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)


def model_params(name: str) -> dict[str, object]:
    """The keyword parameters of a model factory with their defaults."""
    import inspect

    sig = inspect.signature(MODELS.get(name).fn)
    return {k: p.default for k, p in sig.parameters.items() if k != "input_shape"}


def check_params(name: str, params: dict, where: str = "") -> dict:
    """Validate ``params`` for model ``name``: types and ranges from the factory's annotations,
    then its ``check`` hook. Returns every parameter, defaults filled in. ``where`` prefixes
    the key in messages (e.g. "models[0].params")."""
    entry = MODELS.get(name, where=f"{where.rsplit('.', 1)[0]}.model" if where else "")
    full = validate(entry.fn, params, where)
    try:
        if full.get("loss") == "bce" and full.get("output", "sigmoid") != "sigmoid":
            raise ConfigError("loss 'bce' needs output = 'sigmoid' (probabilities in [0, 1])")
        if entry.info.check:
            entry.info.check(full)
    except ConfigError as err:
        text = str(err).rstrip(".")
        raise ConfigError(f"{where}: {text[0].lower()}{text[1:]}." if where else f"{text}.") from None
    return full


def create_model(name: str, input_shape: tuple[int, ...] = (1, 28, 28), seed: int | None = None,
                 **params) -> Autoencoder:
    """Build a registered model for images of ``input_shape`` (C, H, W) with Keras-default init.

    ``seed`` seeds the initialisation without touching the global RNG: ``create_model(name,
    seed=run_seed)`` gives the weights a study run starts from. Without it the global RNG is used.
    """
    full = check_params(name, params)
    entry = MODELS.get(name)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = entry.fn(tuple(input_shape), **full)
        keras_init(model)
    model.spec = {"model": name, "params": full, "input_shape": list(input_shape)}
    check_shapes(model)
    return model


@dataclass
class ModelSize:
    parameters: int
    activations: int  # values kept for the backward pass of one training batch
    bytes: int  # estimated training memory: weights, gradients, optimizer state, activations
    shapes: dict  # state_dict key -> tensor shape


def inspect_model(name: str, params: dict, input_shape: tuple[int, ...], batch_size: int,
                  max_bytes: int | None = None) -> ModelSize:
    """Size a model before it is allocated, and check that it maps ``input_shape`` back to itself.

    It is first built on PyTorch's meta device (shapes only, no memory): its parameter count is
    exact and, above ``max_bytes``, nothing more is done. Then a real copy runs two images
    through, layer by layer, which counts the activations a training batch keeps."""
    full = check_params(name, params)
    factory = MODELS.get(name).fn
    with torch.device("meta"):
        meta_model = factory(tuple(input_shape), **full)
    n = count_parameters(meta_model)
    shapes = {k: tuple(v.shape) for k, v in meta_model.state_dict().items()}
    # fp32 weights + gradient + up to 4 optimizer buffers (Nadam)
    weights = 4 * 6 * n
    if max_bytes is not None and weights > max_bytes:
        return ModelSize(n, 0, weights, shapes)
    if max_bytes:  # the activations too, still on the meta device: a refused model allocates nothing
        meta_model.spec = {"model": name, "params": full, "input_shape": list(input_shape)}
        try:
            activations = check_shapes(meta_model) * batch_size // 2
        except (ConfigError, NotImplementedError):  # an op without a meta kernel: the real copy tells
            activations = 0
        if weights + 4 * 2 * activations > max_bytes:
            return ModelSize(n, activations, weights + 4 * 2 * activations, shapes)
    with torch.random.fork_rng(devices=[]):
        model = factory(tuple(input_shape), **full)
    model.spec = {"model": name, "params": full, "input_shape": list(input_shape)}
    activations = check_shapes(model) * batch_size // 2
    # ... and the activations twice (forward values and their gradients).
    return ModelSize(n, activations, weights + 4 * 2 * activations, shapes)


def format_bytes(n: float) -> str:
    units = ["bytes", "KB", "MB", "GB", "TB", "PB"]
    i = min(int(math.log(max(n, 1), 1024)), len(units) - 1)
    return f"{n / 1024**i:.1f} {units[i]}" if i else f"{int(n)} bytes"

import_modules(__name__, __path__)  # every module of this package registers its entries
