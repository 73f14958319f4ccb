"""Figures as pure functions from results to matplotlib figures (the caller saves them)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display needed on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def loss_curves(entries: list[dict], title: str = "Learning curves", log: bool = False):
    """Training (dashed) and validation (solid) loss per epoch of every run, one colour per run."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, e in enumerate(entries):
        hist = e.get("history") or []
        if not hist:
            continue
        color = f"C{i % 10}"
        epochs = [h["epoch"] for h in hist]
        ax.plot(epochs, [h["train_loss"] for h in hist], "--", color=color, label=f"{e['name']} train")
        if "val_loss" in hist[0]:
            ax.plot(epochs, [h["val_loss"] for h in hist], "-", color=color, label=f"{e['name']} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def image_grid(rows: list[torch.Tensor], row_labels: list[str], title: str = ""):
    """Rows of (n, C, H, W) images in [0, 1] as a grid with a label per row."""
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.1 + 0.4), squeeze=False)
    for r, (imgs, label) in enumerate(zip(rows, row_labels)):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                img = imgs[c].detach().float().cpu().clamp(0, 1)
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="binary", vmin=0, vmax=1)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
        axes[r, 0].set_title(label, loc="left", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_reconstructions(model, images, n: int = 15, title: str = ""):
    """A 2×n grid: the first ``n`` images on top, their reconstructions below, clipped to [0, 1]."""
    x = images if isinstance(images, torch.Tensor) else images.x
    x = x[:n]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        recon = model(x.to(device)).cpu()
    model.train(was_training)
    return image_grid([x, recon.clamp(0, 1)], ["original", "reconstruction"], title)


# ---------------------------------------------------------------- sparse codes and novelty (SPEC 1.3, 1.5)


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
        ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_matrix(confusion, class_names: list[str], title: str = ""):
    """A confusion matrix (rows: true class, columns: predicted) labelled by class name."""
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=class_names).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def accuracy_vs_k(points: dict[str, list[tuple[int, float]]], baselines: dict[str, float],
                  title: str = "Accuracy against k"):
    """One line per metric (name -> [(k, accuracy)]), dotted horizontal lines for baselines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, pts) in enumerate(points.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=f"C{i}", label=name)
    for i, (name, value) in enumerate(baselines.items()):
        ax.axhline(value, ls=":", color=f"C{i + len(points)}", label=name)
    ax.set_xlabel("k (code units kept per sample in training)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def score_histogram(seen, unseen, title: str = "", xlabel: str = "reconstruction error"):
    """Overlaid density histograms of novelty scores of seen and unseen classes."""
    import numpy as np

    seen, unseen = np.asarray(seen), np.asarray(unseen)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([seen, unseen]), bins=60)
    ax.hist(seen, bins=bins, density=True, alpha=0.6, label=f"seen classes (n={len(seen):,})")
    ax.hist(unseen, bins=bins, density=True, alpha=0.6, label=f"unseen classes (n={len(unseen):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the autoencoder zoo (SPEC 1.2)


def _predict(model, fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(model, x)`` in eval mode without autograd, on the model's device, back on the CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = fn(model, x.to(device)).cpu()
    model.train(was_training)
    return out


def denoising_grid(model, images, noise: float, n: int = 10, seed: int = 0, title: str = ""):
    """Three rows: noisy inputs (x + noise·N(0, 1), clipped), the model's output, clean targets."""
    from ..train import add_noise

    x = (images if isinstance(images, torch.Tensor) else images.x)[:n]
    noisy = add_noise(x, noise, torch.Generator().manual_seed(seed))
    out = _predict(model, lambda m, v: m(v), noisy)
    return image_grid([noisy, out.clamp(0, 1), x], ["noisy input", "denoised", "clean target"], title)


def code_images(model, images, n: int = 10, title: str = ""):
    """Originals above their codes; a (C, h, w) code is drawn as its C channels side by side,
    scaled by the largest value shown (the blog's "encoded representations")."""
    x = (images if isinstance(images, torch.Tensor) else images.x)[:n]
    z = _predict(model, lambda m, v: m.encode(v), x)
    if z.dim() == 2:  # a flat code: one row of pixels
        z = z[:, None, None, :]
    c, h, w = z.shape[1:]
    cols = next(d for d in range(1, c + 1) if c % d == 0 and d * d >= c)  # 8 channels: 2 rows of 4
    tiles = z.view(-1, c // cols, cols, h, w).permute(0, 1, 3, 2, 4).reshape(-1, 1, c // cols * h, cols * w)
    tiles = tiles / tiles.abs().max().clamp_min(1e-12)
    return image_grid([x, tiles.clamp(0, 1)], ["original", f"code: {c} channels of {h}×{w}"], title)


def latent_scatter(codes: torch.Tensor, labels, class_names=(), title: str = ""):
    """2-D codes of the test images, one colour per class (the first two dimensions if more)."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    c = None if labels is None else torch.as_tensor(labels).numpy()
    pts = ax.scatter(codes[:, 0].numpy(), codes[:, 1].numpy(), c=c, cmap="tab10", s=6, alpha=0.8)
    if c is not None:
        bar = fig.colorbar(pts, ax=ax, ticks=range(len(class_names) or int(c.max()) + 1))
        if class_names:
            bar.ax.set_yticklabels(list(class_names))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title or "latent space")
    fig.tight_layout()
    return fig


def latent_manifold(model, n: int = 15, title: str = ""):
    """Decode an n×n grid of 2-D codes at Gaussian quantiles 0.05..0.95 (the blog's manifold);
    z[0] runs left to right, z[1] bottom to top, further latent dimensions stay at 0."""
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    latent = model.code_shape[0]
    z = torch.zeros(n * n, latent)
    z[:, 0] = q.repeat(n)
    if latent > 1:
        z[:, 1] = q.flip(0).repeat_interleave(n)
    imgs = _predict(model, lambda m, v: m.decode(v), z).clamp(0, 1)  # (n*n, C, H, W)
    c, h, w = imgs.shape[1:]
    sheet = imgs.view(n, n, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, n * h, n * w)
    fig, ax = plt.subplots(figsize=(7, 7))
    if c == 1:
        ax.imshow(sheet[0].numpy(), cmap="binary", vmin=0, vmax=1)
    else:
        ax.imshow(sheet.permute(1, 2, 0).numpy())
    ax.axis("off")
    ax.set_title(title or f"decoded {n}×{n} manifold")
    fig.tight_layout()
    return fig
