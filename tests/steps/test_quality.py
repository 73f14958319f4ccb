"""image_quality: PSNR against its formula on the tiny study's reconstructions; SSIM against
torchmetrics' implementation on 28×28 images (the 8×8 digits are below SSIM's window)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from aelab.registry import STEPS


@pytest.mark.parametrize("run", ["ks-k8", "vae", "vq"])
@torch.inference_mode()
def test_psnr_is_the_formula_on_the_reconstructions(every_step, run):
    x = every_step.splits["test"].x
    y = every_step.models[run](x).clamp(0, 1)
    mse = (x - y).double().square().flatten(1).mean(1)
    assert every_step.runs[run]["psnr"] == pytest.approx((10 * torch.log10(1 / mse)).mean().item(), rel=1e-6)
    assert "ssim" not in every_step.runs[run]
    assert any("SSIM needs images of at least 11×11" in line for line in every_step.metrics["summary"])


def test_ssim_on_28x28_reconstructions_agrees_with_torchmetrics():
    from torchmetrics.functional.image import structural_similarity_index_measure

    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    blur = nn.Conv2d(1, 1, 3, padding=1, bias=False)  # a "model" that reconstructs by blurring
    nn.init.constant_(blur.weight, 1 / 9)
    record = SimpleNamespace(name="blur", metrics={})
    test = SimpleNamespace(x=x)
    ctx = SimpleNamespace(splits={"test": test}, summary=[], trained=lambda runs: [(record, blur)])
    STEPS.get("image_quality").fn(ctx)
    with torch.no_grad():
        y = blur(x).clamp(0, 1)
    per_image = [structural_similarity_index_measure(y[i : i + 1].double(), x[i : i + 1].double(),
                                                     data_range=1.0).item() for i in range(len(x))]
    # torchmetrics leaves the window's border out of the mean: close, not bit-equal.
    assert record.metrics["ssim"] == pytest.approx(sum(per_image) / len(per_image), abs=0.01)
    mse = (x - y).double().square().flatten(1).mean(1)
    assert record.metrics["psnr"] == pytest.approx(sum(10 * math.log10(1 / m) for m in mse.tolist()) / 6, rel=1e-6)
