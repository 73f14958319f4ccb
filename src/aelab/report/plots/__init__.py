"""Figures as pure functions from results to matplotlib figures (the caller saves or shows them).

Importing this package chooses no backend: that belongs to the program (the CLI picks Agg), so a
notebook keeps its inline backend. One module per kind of figure: learning curves, images
(reconstructions, codes, filters, manifolds) and charts of measured numbers.
"""

from __future__ import annotations

from ._common import as_images, image_grid, plain
from .charts import accuracy_vs_k, confusion_matrix, latent_scatter, score_histogram
from .curves import LOSS_NAMES, SWEEP_NAMES, loss_curves, loss_name, reconstruction_title
from .images import (
           code_images,
           compare_reconstructions,
           denoising_grid,
           filter_grid,
           latent_manifold,
)

__all__ = ["accuracy_vs_k", "as_images", "code_images", "compare_reconstructions", "confusion_matrix",
           "denoising_grid", "filter_grid", "image_grid", "latent_manifold", "latent_scatter",
           "loss_curves", "loss_name", "plain", "reconstruction_title", "score_histogram",
           "LOSS_NAMES", "SWEEP_NAMES"]
