"""Steps that measure the codes: mean activation, sparsity, and the decoder's filters."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..evaluate import decoder_filters, encode, sparsity_stats
from ._base import Count, Runs, eval_split, evaluated, register_step, summary_line


@register_step("code_activation", produces=("mean_code_activation",))
def step_code_activation(ctx, runs: Runs = None):
    """``mean_code_activation``: the mean of every code unit over the test set, per run (the blog
    compares it for the simple and the L1-sparse model)."""
    test = eval_split(ctx)
    for r, model in ctx.trained(runs):
        r.metrics["mean_code_activation"] = encode(model, test).double().mean().item()


@register_step("sparsity", produces=(
    "mean_activation", "active_fraction", "dead_units", "dead_fraction", "code_size"))
def step_sparsity(ctx, runs: Runs = None, threshold: Annotated[float, Field(ge=0, le=1e6, description=(
        "a unit is active on a sample when |z| > threshold"))] = 1e-2):
    """Mean activation, fraction of active units per sample and dead units of the test codes."""
    test = eval_split(ctx)
    lines = [f"Code sparsity on test images (active: |z| > {threshold:g}):"]
    for r, model in evaluated(ctx, runs):
        stats = sparsity_stats(encode(model, test), threshold)
        r.metrics.update(stats)
        lines.append(summary_line(r.name, {"mean activation": stats["mean_activation"],
                                           "active fraction": stats["active_fraction"],
                                           "dead units": f"{stats['dead_units']}/{stats['code_size']}"}))
    ctx.summary.extend(lines)


@register_step("filters")
def step_filters(ctx, runs: Runs = None, n: Annotated[Count, Field(description="filters shown")] = 64):
    """The decoder's learned filters (what each code unit draws) as an image grid per run."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import filter_grid

    for r, model in evaluated(ctx, runs):
        ctx.save_figure(f"filters-{r.name}", filter_grid(decoder_filters(model, n), f"{r.name}: decoder filters"),
                        f"What each of the first {n} code units of {r.name} adds to the decoder's "
                        "output, scaled to [0, 1] per unit.")
