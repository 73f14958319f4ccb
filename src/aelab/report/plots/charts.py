"""Charts of what the steps measured: confusion matrices, accuracy against k, novelty-score
histograms and the latent scatter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from ._common import literal, plain


def confusion_matrix(confusion, class_names: list[str], title: str = ""):
    """A confusion matrix (rows: true class, columns: predicted) labelled by class name."""
    from sklearn.metrics import ConfusionMatrixDisplay  # lazy: sklearn takes ~1 s to import

    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=[plain(c) for c in class_names]).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45)
    literal(ax.set_title(plain(title)), *ax.get_xticklabels(), *ax.get_yticklabels())
    fig.tight_layout()
    return fig


def accuracy_vs_k(points: dict[str, list[tuple[int, float]]], baselines: dict[str, float],
                  title: str = "Accuracy against k"):
    """One line per metric (name -> [(k, accuracy)]), dotted horizontal lines for baselines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, pts) in enumerate(points.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=f"C{i}", label=plain(name))
    for i, (name, value) in enumerate(baselines.items()):
        ax.axhline(value, ls=":", color=f"C{i + len(points)}", label=plain(name))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (code units kept per sample in training)")
    ax.set_ylabel("test accuracy")
    literal(ax.set_title(plain(title)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def score_histogram(seen, unseen, title: str = "", xlabel: str = "reconstruction error"):
    """Overlaid density histograms of novelty scores of seen and unseen classes."""
    seen, unseen = np.asarray(seen), np.asarray(unseen)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([seen, unseen]), bins=60)
    ax.hist(seen, bins=bins, density=True, alpha=0.6, label=f"seen classes (n={len(seen):,})")
    ax.hist(unseen, bins=bins, density=True, alpha=0.6, label=f"unseen classes (n={len(unseen):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    literal(ax.set_title(plain(title)))
    ax.legend()
    fig.tight_layout()
    return fig



def latent_scatter(codes: torch.Tensor, labels, class_names=(), title: str = ""):
    """2-D codes of the test images, one colour per class (the first two dimensions if more)."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    c = None if labels is None else torch.as_tensor(labels).numpy()
    pts = ax.scatter(codes[:, 0].numpy(), codes[:, 1].numpy(), c=c, cmap="tab10", s=6, alpha=0.8)
    if c is not None:
        bar = fig.colorbar(pts, ax=ax, ticks=range(len(class_names) or int(c.max()) + 1))
        if class_names:
            literal(*bar.ax.set_yticklabels([plain(c) for c in class_names]))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    literal(ax.set_title(plain(title or "latent space")))
    fig.tight_layout()
    return fig
