"""The image-quality step: PSNR and SSIM of reconstructions (SPEC 1.6)."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from ..evaluate.image_quality import psnr, ssim
from ._base import Runs, eval_split, register_step, summary_line

SSIM_MIN_SIDE = 11  # the Gaussian window of Wang et al. (σ 1.5, 11×11) must fit in the image


def reconstruct(model, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """The model's reconstructions of ``x`` (activated, clamped to [0, 1]), in eval mode, on the CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(x[i : i + batch].to(device)).cpu() for i in range(0, len(x), batch)])
    model.train(was_training)
    return out.clamp(0, 1)


@register_step("image_quality", produces=("psnr", "ssim"))
def step_image_quality(ctx, runs: Runs = None,
                       n: Annotated[int, Field(ge=1, le=1_000_000, description=(
                           "test images scored (the first n)"))] = 10_000):
    """PSNR (dB) and SSIM (Wang et al. 2004) of each run's reconstructions of the test images
    against the originals, averaged over images: ``psnr``, ``ssim``. SSIM needs images of at least
    11×11 pixels; smaller ones get PSNR only, with a sentence."""
    x = eval_split(ctx).x[:n]
    small = min(x.shape[-2:]) < SSIM_MIN_SIDE
    lines = [f"Reconstruction quality on {len(x):,} test images (PSNR in dB, SSIM; data range 1):"]
    if small:
        lines.append(f"- SSIM needs images of at least {SSIM_MIN_SIDE}×{SSIM_MIN_SIDE} pixels (its "
                     f"Gaussian window); these are {x.shape[-2]}×{x.shape[-1]}: PSNR only.")
    for r, model in ctx.trained(runs):
        y = reconstruct(model, x)
        scores = {"psnr": psnr(x, y)}
        if not small:
            scores["ssim"] = ssim(x, y)
        r.metrics.update(scores)
        lines.append(summary_line(r.name, {k.upper(): v for k, v in scores.items()}))
    ctx.summary.extend(lines)
