"""Fully connected autoencoders: stacked (SPEC 1.1), with an optional L1 activity penalty."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..errors import ConfigError
from . import Autoencoder, flat_size, register_model

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


@register_model("stacked")
def stacked(
    input_shape,
    hidden: Sequence[int] = (256, 50),
    activation: str = "relu",
    code_activation: str = "relu",
    activity_l1: float = 0.0,
    loss: str = "bce",
    output: str = "sigmoid",
):
    """Stacked autoencoder, 784-256-50-256-784 by default; ``activity_l1`` makes it sparse."""
    return dense_autoencoder(input_shape, hidden, activation, code_activation, activity_l1, loss, output)


@register_model("stacked-sparse")
def stacked_sparse(
    input_shape,
    hidden: Sequence[int] = (256, 50),
    activity_l1: float = 1e-6,
    activation: str = "relu",
    loss: str = "bce",
    output: str = "sigmoid",
):
    """The stacked autoencoder with an L1 activity penalty (Keras semantics) on the codes."""
    return dense_autoencoder(input_shape, hidden, activation, "relu", activity_l1, loss, output)
