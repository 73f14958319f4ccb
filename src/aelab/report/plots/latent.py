"""Figures of a generative model's latent space (SPEC 1.6), as pure functions returning
matplotlib figures: samples from the prior, interpolations, traversals, embeddings.

The 2-D manifold of the Keras blog (an n×n grid over Gaussian quantiles) is
:func:`aelab.report.plots.latent_manifold`. The code arithmetic (:func:`interpolate`,
:func:`traverse`) is separate from the drawing so it can be checked on numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._common import as_images, image_grid, predict
from .charts import latent_scatter


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, steps, D) codes on the straight lines from each z_a to z_b, both ends included."""
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype)[None, :, None]
    return z_a[:, None] + t * (z_b - z_a)[:, None]


def traverse(z: torch.Tensor, values: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """(len(dims), len(values), D) codes: row i is ``z`` (D,) with dimension dims[i] set to each value."""
    out = z.expand(len(dims), len(values), -1).clone()
    for i, d in enumerate(dims):
        out[i, :, d] = values
    return out


def _decode(model, z: torch.Tensor) -> torch.Tensor:
    return predict(model, lambda m, v: m.decode(v), z).clamp(0, 1)


def prior_samples(model, n: int = 32, ncols: int = 16, seed: int = 0, title: str = ""):
    """Decoded draws z ~ N(0, I) of a Gaussian-latent model (the VAE family), ``ncols`` a row."""
    z = torch.randn((n, *model.code_shape), generator=torch.Generator().manual_seed(seed))
    return decoded_grid(model, z, ncols, title or f"{n} samples from the prior N(0, I)")


def decoded_grid(model, z: torch.Tensor, ncols: int = 16, title: str = ""):
    """The decoded codes ``z`` (e.g. a VQ-VAE's sampled code maps), ``ncols`` a row."""
    imgs = _decode(model, z)
    rows = [imgs[i : i + ncols] for i in range(0, len(z), ncols)]
    return image_grid(rows, [""] * len(rows), title)


def interpolation(model, images_a, images_b, steps: int = 10, title: str = ""):
    """One row per pair: decoded codes on the line from encode(a) to encode(b) (the VAE's
    mean), the two test images at the ends for comparison."""
    shape = model.input_shape
    a, b = as_images(images_a, shape), as_images(images_b, shape)
    za, zb = (predict(model, lambda m, v: m.encode(v), x) for x in (a, b))
    lines = interpolate(za.flatten(1), zb.flatten(1), steps)  # (N, steps, D)
    decoded = _decode(model, lines.reshape(-1, *za.shape[1:])).view(len(a), steps, *a.shape[1:])
    rows = [torch.cat([a[i : i + 1], decoded[i], b[i : i + 1]]) for i in range(len(a))]
    return image_grid(rows, [f"pair {i + 1}: image, {steps} steps, image" for i in range(len(a))],
                      title or "latent interpolation")


def traversal(model, image, values: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3),
              dims: Sequence[int] | None = None, title: str = ""):
    """One row per latent dimension: the code of ``image`` with that dimension swept over
    ``values`` (in prior standard deviations), decoded; shows what each dimension controls
    (the β-VAE's disentanglement figure, Higgins et al. 2017)."""
    x = as_images(image, model.input_shape)[:1]
    z = predict(model, lambda m, v: m.encode(v), x)[0].flatten()
    dims = list(range(len(z))) if dims is None else list(dims)
    codes = traverse(z, torch.tensor(values, dtype=z.dtype), dims)
    decoded = _decode(model, codes.reshape(-1, *model.code_shape)).view(len(dims), len(values), *x.shape[1:])
    labels = [f"z[{d}]: " + ", ".join(f"{v:g}" for v in values) for d in dims]
    return image_grid(list(decoded), labels, title or "latent traversal")


def embedding_scatter(embedded, labels, class_names: Sequence[str] = (), method: str = "",
                      trust: float | None = None, title: str = ""):
    """A 2-D embedding of the codes, one colour per class, its trustworthiness in the title."""
    what = f"{method} of the codes" if method else "embedding of the codes"
    if trust is not None:
        what += f" (trustworthiness {trust:.3f})"
    fig = latent_scatter(torch.as_tensor(embedded), labels, class_names, title or what)
    ax = fig.axes[0]
    ax.set_xlabel(f"{method} 1".strip())
    ax.set_ylabel(f"{method} 2".strip())
    return fig
