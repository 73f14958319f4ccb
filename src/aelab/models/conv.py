"""Convolutional autoencoders: the Keras blog's conv and denoising models (SPEC 1.2) and the
transposed-convolution model of the learning-rate study (SPEC 1.4).

Every layer sits in the ``encoder`` / ``decoder`` nn.Sequential so ``check_shapes`` can name the
one that breaks; the side-length rules below fail earlier, with the layer that causes them.
Channels follow the data (grayscale or RGB): the first conv takes C channels, the last gives C.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..errors import ConfigError
from .base import Autoencoder, Loss, Output, register_model

Filters = Annotated[int, Field(ge=1, le=4096)]
Filters3 = Annotated[list[Filters], Field(min_length=3, max_length=3, description=(
    "numbers of 3×3 filters of the three encoder convs"))]


def _relu() -> nn.Module:
    # In place: a conv's backward needs its input, not its output, so the ReLU may overwrite it;
    # one memory pass less per layer, about 10% of a conv step on CPU (bench_conv).
    return nn.ReLU(inplace=True)


def _conv(c_in: int, c_out: int, padding: int | str = "same", relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=padding)]
    return layers + [_relu()] if relu else layers


def _pool() -> nn.Module:
    # Keras MaxPooling2D(padding="same") rounds odd sides up (7 -> 4); ceil_mode does the same.
    return nn.MaxPool2d(2, ceil_mode=True)


def _up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")  # Keras UpSampling2D


# After nearest 2x upsampling, output row 2i + a of a 3x3 "same" conv reads upsampled rows
# 2i + a - 1 .. 2i + a + 1, which are small-image rows i - 1 .. i + 1 as below: _PHASE_TAPS[a][r, t]
# is 1 where kernel tap t lands on small-image row i + r - 1 (columns alike).
_PHASE_TAPS = torch.tensor([[[1.0, 0, 0], [0, 1, 1], [0, 0, 0]],   # a = 0: tap 0 -> i-1; 1, 2 -> i
                            [[0.0, 0, 0], [1, 1, 0], [0, 0, 1]]])  # a = 1: taps 0, 1 -> i; 2 -> i+1


def _channels_last(h: torch.Tensor) -> bool:
    try:
        return h.is_contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # under vmap (stacked members, aelab.stacked), which batches contiguous tensors
        return False


class UpConv2d(nn.Conv2d):
    """Keras ``UpSampling2D(2)`` followed by ``Conv2D(c_out, 3, padding="same")``, as one layer.

    The 3x3 kernel is folded into four 3x3 kernels, one per output phase (row and column
    parity), applied to the small image and interleaved by ``pixel_shuffle``. Same values and
    gradients as upsampling then convolving (the parameter is the usual 3x3 kernel, Glorot
    initialised with the usual fans), without the 4x larger upsampled tensor: the conv model's
    last layer (16 -> 1 channels, 14 -> 28 pixels, batch 128, channels-last) takes 1.2 instead
    of 4.3 ms forward and backward on 2 CPU cores, and whole conv steps about 20% less.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", after nearest x2 upsampling"

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        taps = _PHASE_TAPS.to(self.weight)
        # (O, 2, 2, C, 3, 3) -> (4·O, C, 3, 3), in pixel_shuffle's channel order o·4 + 2a + b
        w = torch.einsum("ari,ocij,bsj->oabcrs", taps, self.weight, taps).flatten(0, 2)
        if _channels_last(h):
            w = w.contiguous(memory_format=torch.channels_last)
        bias = self.bias.repeat_interleave(4) if self.bias is not None else None
        return F.pixel_shuffle(F.conv2d(h, w, bias, padding=1), 2)


def _up_conv(c_in: int, c_out: int, relu: bool = True) -> list[nn.Module]:
    """UpSampling2D + Conv2D(3, same) (+ ReLU), fused into one UpConv2d layer."""
    return [UpConv2d(c_in, c_out), _relu()] if relu else [UpConv2d(c_in, c_out)]


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ConfigError(f"Model {name!r} needs images of shape (C, H, W), got {tuple(input_shape)}.")
    return input_shape  # type: ignore[return-value]


def _require_sides(name: str, input_shape, fits: Callable[[int], bool], why: str, rule: str) -> None:
    """Fail at build time when the decoder cannot give the input's height and width back."""
    _, h, w = input_shape
    if not (fits(h) and fits(w)):
        raise ConfigError(
            f"Model {name!r} cannot map {h}×{w} images back to {h}×{w}: {why}, so it needs "
            f"heights and widths {rule}; resize the images or choose another model."
        )


def _filters(name: str, filters: Sequence[int], n: int) -> list[int]:
    filters = [int(f) for f in filters]
    if len(filters) != n or min(filters) < 1:
        raise ConfigError(f"Model {name!r}: filters must be {n} positive integers, got {filters}.")
    return filters


@register_model("conv")
def conv(input_shape, filters: Filters3 = (16, 8, 8), loss: Loss = "bce", output: Output = "sigmoid"):
    """The blog's convolutional autoencoder: 3×3 convs 16-8-8 (ReLU, same) each followed by 2×2
    max-pooling (code 4×4×8 for 28×28); decoder conv 8 + upsample, conv 8 + upsample, conv 16
    *unpadded* + upsample, conv C with the output activation."""
    c, _, _ = _image_shape("conv", input_shape)
    f1, f2, f3 = _filters("conv", filters, 3)
    # Sides go s -> 8·ceil(s/8) - 4 (three rounding-up pools, x8 upsampling, the unpadded conv's -2
    # before the last x2), so only sides 8k - 4 (12, 20, 28, 36, ...) come back unchanged.
    _require_sides("conv", input_shape, lambda s: s % 8 == 4,
                   "decoder layer 5 (the unpadded Conv2d) trims 2 pixels before the last upsampling",
                   "of the form 8k - 4 (12, 20, 28, 36, ...)")
    encoder = nn.Sequential(
        *_conv(c, f1), _pool(), *_conv(f1, f2), _pool(), *_conv(f2, f3), _pool(),
    )
    decoder = nn.Sequential(
        *_conv(f3, f3), *_up_conv(f3, f2), _up(), *_conv(f2, f1, padding=0),
        *_up_conv(f1, c, relu=False),
    )
    return Autoencoder(encoder, decoder, input_shape, output=output, loss=loss)


@register_model("denoising-conv")
def denoising_conv(input_shape, filters: Annotated[Filters, Field(description=(
        "filters of every conv layer"))] = 32, loss: Loss = "bce", output: Output = "sigmoid"):
    """The blog's denoising model: conv 32 + pool twice (code 7×7×32), conv 32 + upsample twice,
    conv C. The noise is not part of the model: train it with ``input_noise = 0.5`` (clean
    targets), as the blog adds the noise to the data."""
    c, _, _ = _image_shape("denoising-conv", input_shape)
    _require_sides("denoising-conv", input_shape, lambda s: s % 4 == 0,
                   "encoder layers 2 and 5 (MaxPool2d) halve the sides twice",
                   "divisible by 4")
    encoder = nn.Sequential(*_conv(c, filters), _pool(), *_conv(filters, filters), _pool())
    decoder = nn.Sequential(
        *_conv(filters, filters), *_up_conv(filters, filters), *_up_conv(filters, c, relu=False),
    )
    return Autoencoder(encoder, decoder, input_shape, output=output, loss=loss)


def _conv_t(c_in: int, c_out: int) -> list[nn.Module]:
    # Keras Conv2DTranspose(3, strides=2, padding="same") doubles the sides: (s-1)·2 - 2 + 3 + 1.
    return [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1), _relu()]


@register_model("conv-transposed")
def conv_transposed(input_shape, filters: Filters3 = (32, 16, 8), loss: Loss = "sse",
                    output: Output = "sigmoid"):
    """SPEC 1.4: three 3×3 convs of decreasing width (ReLU, same), max-pooling after the first
    two (code 7×7×8 for 28×28); decoder transposed conv (x2), conv, transposed conv (x2), conv C.
    Sum-of-squares loss by default."""
    c, _, _ = _image_shape("conv-transposed", input_shape)
    f1, f2, f3 = _filters("conv-transposed", filters, 3)
    _require_sides("conv-transposed", input_shape, lambda s: s % 4 == 0,
                   "encoder layers 2 and 5 (MaxPool2d) halve the sides twice and the two "
                   "transposed convs double them", "divisible by 4")
    encoder = nn.Sequential(*_conv(c, f1), _pool(), *_conv(f1, f2), _pool(), *_conv(f2, f3))
    decoder = nn.Sequential(
        *_conv_t(f3, f2), *_conv(f2, f2), *_conv_t(f2, f1), *_conv(f1, c, relu=False),
    )
    return Autoencoder(encoder, decoder, input_shape, output=output, loss=loss)
