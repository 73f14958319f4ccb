"""Figures of images: reconstructions, denoising, codes drawn as images, decoder filters, the
decoded latent manifold."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ...train import add_noise
from ._common import as_images, image_grid, literal, plain, predict


def compare_reconstructions(model, images, n: int = 15, title: str = ""):
    """A 2×n grid: the first ``n`` images on top, their reconstructions below, clipped to [0, 1].

    ``images`` as :func:`as_images` takes them (tensor, NumPy array or Dataset; flat, 2-D or
    with channels; float or uint8). Returns the figure.
    """
    x = as_images(getattr(images, "x", images)[:n], getattr(model, "input_shape", None))
    recon = predict(model, lambda m, v: m(v), x)
    return image_grid([x.clamp(0, 1), recon.clamp(0, 1)], ["original", "reconstruction"], title)



def filter_grid(filters: torch.Tensor, title: str = "", ncols: int = 16):
    """(n, C, H, W) filters in [0, 1] (e.g. evaluate.decoder_filters) tiled into one image with
    1-pixel white gaps (one imshow: 64 subplots would take seconds to draw)."""
    f = filters.detach().float().cpu()
    n, c, h, w = f.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    tiles = torch.ones(nrows * ncols, c, h + 1, w + 1)
    tiles[:n, :, :h, :w] = f
    mosaic = tiles.view(nrows, ncols, c, h + 1, w + 1).permute(0, 3, 1, 4, 2)
    mosaic = mosaic.reshape(nrows * (h + 1), ncols * (w + 1), c)[:-1, :-1]
    fig, ax = plt.subplots(figsize=(ncols * 0.6, nrows * 0.6 + 0.5))
    ax.imshow(mosaic[..., 0].numpy() if c == 1 else mosaic.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if title:
        literal(ax.set_title(plain(title)))
    fig.tight_layout()
    return fig


def denoising_grid(model, images, noise: float, n: int = 10, seed: int = 0, title: str = ""):
    """Three rows: noisy inputs (x + noise·N(0, 1), clipped), the model's output, clean targets."""
    x = as_images(getattr(images, "x", images)[:n], getattr(model, "input_shape", None))
    noisy = add_noise(x, noise, torch.Generator().manual_seed(seed))
    out = predict(model, lambda m, v: m(v), noisy)
    return image_grid([noisy, out.clamp(0, 1), x], ["noisy input", "denoised", "clean target"], title)


def code_images(model, images, n: int = 10, title: str = ""):
    """Originals above their codes; a (C, h, w) code is drawn as its C channels side by side,
    scaled by the largest value shown (the blog's "encoded representations")."""
    x = as_images(getattr(images, "x", images)[:n], getattr(model, "input_shape", None))
    z = predict(model, lambda m, v: m.encode(v), x)
    if z.dim() == 2:  # a flat code: one row of pixels
        z = z[:, None, None, :]
    c, h, w = z.shape[1:]
    cols = next(d for d in range(1, c + 1) if c % d == 0 and d * d >= c)  # 8 channels: 2 rows of 4
    tiles = z.view(-1, c // cols, cols, h, w).permute(0, 1, 3, 2, 4).reshape(-1, 1, c // cols * h, cols * w)
    tiles = tiles / tiles.abs().max().clamp_min(1e-12)
    return image_grid([x, tiles.clamp(0, 1)], ["original", f"code: {c} channels of {h}×{w}"], title)


def latent_manifold(model, n: int = 15, title: str = ""):
    """Decode an n×n grid of 2-D codes at Gaussian quantiles 0.05..0.95 (the blog's manifold);
    z[0] runs left to right, z[1] bottom to top, further latent dimensions stay at 0."""
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    latent = model.code_shape[0]
    z = torch.zeros(n * n, latent)
    z[:, 0] = q.repeat(n)
    if latent > 1:
        z[:, 1] = q.flip(0).repeat_interleave(n)
    imgs = predict(model, lambda m, v: m.decode(v), z).clamp(0, 1)  # (n*n, C, H, W)
    c, h, w = imgs.shape[1:]
    sheet = imgs.view(n, n, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, n * h, n * w)
    fig, ax = plt.subplots(figsize=(7, 7))
    if c == 1:
        ax.imshow(sheet[0].numpy(), cmap="binary", vmin=0, vmax=1)
    else:
        ax.imshow(sheet.permute(1, 2, 0).numpy())
    ax.axis("off")
    literal(ax.set_title(plain(title or f"decoded {n}×{n} manifold")))
    fig.tight_layout()
    return fig
