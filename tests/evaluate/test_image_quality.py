"""PSNR against its formula in NumPy; SSIM against torchmetrics' independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aelab.evaluate.image_quality import psnr, ssim


def _pair(shape=(4, 1, 28, 28), noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + noise * torch.randn(shape, generator=g)).clamp(0, 1)


def test_psnr_is_the_formula_per_image_averaged():
    x, y = _pair()
    a, b = x.double().numpy(), y.double().numpy()
    expected = np.mean([10 * math.log10(1.0 / np.mean((a[i] - b[i]) ** 2)) for i in range(len(a))])
    assert psnr(x, y) == pytest.approx(expected, rel=1e-9)
    assert psnr(x * 255, y * 255, data_range=255.0) == pytest.approx(expected, rel=1e-6)
    assert psnr(x, x) == math.inf


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 32, 32)])
def test_ssim_agrees_with_torchmetrics(shape):
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    x, y = _pair(shape, noise=0.2)
    ours = ssim(x, y)
    # torchmetrics averages the SSIM map without the window's border: close, not bit-equal.
    theirs = np.mean([tm_ssim(y[i : i + 1].double(), x[i : i + 1].double(), data_range=1.0).item()
                      for i in range(len(x))])
    assert ours == pytest.approx(theirs, abs=0.03)
    assert ssim(x, x) == pytest.approx(1.0) and ours < 0.9
