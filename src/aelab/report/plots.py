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
