"""Image quality of reconstructions: PSNR and SSIM (Wang et al. 2004), per image then averaged.

SSIM comes from scikit-image (a dependency), never re-implemented: Gaussian weights with
σ = 1.5 and population covariances, the settings of Wang et al. that torchmetrics also uses.
"""

from __future__ import annotations

import numpy as np
import torch


def _np(images) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) images as float64 NumPy (N, C, H, W)."""
    a = images.detach().cpu().double().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, float)
    return a[:, None] if a.ndim == 3 else a


def psnr(x, y, data_range: float = 1.0) -> float:
    """Mean over images of 10·log10(data_range² / MSE), in dB; identical images give inf."""
    a, b = _np(x), _np(y)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    with np.errstate(divide="ignore"):
        return float(np.mean(10 * np.log10(data_range**2 / mse)))


def ssim(x, y, data_range: float = 1.0) -> float:
    """Mean over images of the structural similarity (1 for identical images); images need
    sides of at least 11 pixels (the Gaussian window)."""
    # scikit-image's import is slow: only when SSIM is asked for
    from skimage.metrics import structural_similarity

    a, b = _np(x), _np(y)
    return float(np.mean([
        structural_similarity(p, q, data_range=data_range, channel_axis=0, gaussian_weights=True,
                              sigma=1.5, use_sample_covariance=False)
        for p, q in zip(a, b, strict=True)]))
