"""Steps that look into the latent space (SPEC 1.6): interpolations, traversals, the 2-D
manifold of the Keras blog, and 2-D embeddings of any model's codes with their trustworthiness."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..errors import ConfigError
from ..evaluate import encode
from ._base import Count, Runs, eval_split, register_step, summary_line
from .generative import named_specs

Values = Annotated[list[Annotated[float, Field(ge=-100, le=100)]], Field(min_length=2, max_length=30)]


@register_step("interpolation")
def step_interpolation(ctx, runs: Runs = None,
                       pairs: Annotated[int, Field(ge=1, le=50, description="pairs of test images")] = 5,
                       steps: Annotated[int, Field(ge=2, le=50, description=(
                           "decoded points on each line, ends included"))] = 10):
    """Decoded codes on straight lines between the codes of test images i and i + pairs, one row
    per pair, the two images at the ends (default: every run)."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots.latent import interpolation

    x = eval_split(ctx).x
    a, b = x[:pairs], x[pairs : 2 * pairs]
    for r, model in ctx.trained(runs):
        ctx.save_figure(f"interpolation-{r.name}",
                        interpolation(model, a, b, steps, title=f"{r.name}: latent interpolation"),
                        f"{r.name}: {steps} images decoded from evenly spaced codes on the line between "
                        f"the codes of two test images (shown at the ends), {len(a)} pairs.")


@register_step("traversal")
def step_traversal(ctx, runs: Runs = None,
                   values: Annotated[Values | None, Field(description=(
                       "values each dimension is set to, in prior standard deviations "
                       "(default -3 to 3 in steps of 1)"))] = None,
                   max_dims: Annotated[int, Field(ge=1, le=256, description=(
                       "latent dimensions shown, the first ones"))] = 16):
    """One row per latent dimension: the first test image's code with that dimension swept,
    decoded (Higgins et al. 2017); default: the runs with a Gaussian latent."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots.latent import traversal

    values = values or [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    image = eval_split(ctx).x[:1]
    for r, model in ctx.trained(runs):
        if runs is None and not hasattr(model, "stats"):
            continue
        if len(model.code_shape) != 1:
            ctx.summary.append(f"traversal: run {r.name} has codes of shape {model.code_shape}, not a "
                               "flat code; no traversal.")
            continue
        dims = list(range(min(max_dims, model.code_shape[0])))
        ctx.save_figure(f"traversal-{r.name}",
                        traversal(model, image, values, dims, title=f"{r.name}: latent traversal"),
                        f"{r.name}: the first test image's code with one latent dimension per row set "
                        f"to {', '.join(f'{v:g}' for v in values)}, decoded; {len(dims)} of "
                        f"{model.code_shape[0]} dimensions.")


def _check_manifold(params, runs, data, where) -> None:
    """Runs named explicitly must have a 2-D Gaussian latent."""
    for spec, p in named_specs(runs, params["runs"]):
        if "latent_dim" not in p or p["latent_dim"] != 2:
            raise ConfigError(f"{where}.runs: run {spec.name} ({spec.model}) has no 2-D latent; the "
                              "manifold needs a VAE-family model with latent_dim = 2.")


@register_step("manifold", check=_check_manifold)
def step_manifold(ctx, runs: Runs = None,
                  n: Annotated[int, Field(ge=2, le=50, description="the decoded grid is n×n")] = 15):
    """The Keras blog's figure: images decoded from an n×n grid over the 2-D latent at Gaussian
    quantiles 0.05-0.95 (default: runs with a 2-D Gaussian latent)."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import latent_manifold

    for r, model in ctx.trained(runs):
        if not hasattr(model, "stats") or model.code_shape != (2,):
            continue
        ctx.save_figure(f"manifold2d-{r.name}",
                        latent_manifold(model, n, title=f"{r.name}: decoded {n}×{n} manifold"),
                        f"Images decoded by {r.name} from an {n}×{n} grid over its 2-D latent at "
                        "Gaussian quantiles 0.05-0.95 (the Keras blog's figure).")


Method = Literal["pca", "tsne", "umap"]


@register_step("embedding", needs_labels=True,
               produces=("trustworthiness_pca", "trustworthiness_tsne", "trustworthiness_umap"))
def step_embedding(ctx, runs: Runs = None,
                   methods: Annotated[list[Method], Field(min_length=1, max_length=3, description=(
                       "2-D maps drawn: pca, tsne, umap (umap needs the umap-learn extra and is "
                       "skipped, with a sentence, without it)"))] = ("pca", "tsne", "umap"),
                   n: Annotated[int, Field(ge=10, le=100_000, description=(
                       "test images embedded (a seeded random subset; t-SNE is quadratic)"))] = 2000,
                   n_neighbors: Annotated[Count, Field(description=(
                       "neighbours kept for the trustworthiness"))] = 5):
    """2-D maps of every run's test codes coloured by class, with their trustworthiness (Venna &
    Kaski 2001): ``trustworthiness_<method>``, one figure per run and method."""
    # lazy: matplotlib, t-SNE and UMAP only when the step runs, not when a study loads
    from ..evaluate.embeddings import embed, trustworthiness
    from ..report.plots.latent import embedding_scatter

    test = eval_split(ctx)
    pick = embedding_subset(len(test), n, ctx.study.seed)
    methods = list(dict.fromkeys(methods))
    if "umap" in methods and not _has_umap():
        methods.remove("umap")
        ctx.summary.append("embedding: UMAP skipped (pip install 'aelab[generative]' for umap-learn).")
    lines = [f"Trustworthiness ({n_neighbors} neighbours) of 2-D maps of {len(pick):,} test codes:"]
    for r, model in ctx.trained(runs):
        codes, labels = encode(model, test.x[pick]), test.y[pick]
        scores = {}
        for method in methods:
            flat = embed(codes, method, seed=ctx.study.seed)
            scores[method] = trustworthiness(codes, flat, n_neighbors)
            r.metrics[f"trustworthiness_{method}"] = scores[method]
            ctx.save_figure(f"embedding-{method}-{r.name}",
                            embedding_scatter(flat, labels, test.class_names, method, scores[method],
                                              title=f"{r.name}: {method} of the codes"),
                            f"A {method} map of {r.name}'s codes of {len(pick):,} test images, coloured "
                            f"by class; trustworthiness {scores[method]:.3f} (1: every point's "
                            f"{n_neighbors} nearest neighbours on the map are near it in the codes).")
        lines.append(summary_line(r.name, scores))
    ctx.summary.extend(lines)


def embedding_subset(size: int, n: int, seed: int) -> torch.Tensor:
    """Indices of the embedded images: all when there are at most ``n``, else n drawn with ``seed``."""
    if size <= n:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def _has_umap() -> bool:
    from importlib.util import find_spec

    return find_spec("umap") is not None
