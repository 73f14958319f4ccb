"""The clustering step: k-means on the codes, scored against the classes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..evaluate import encode, kmeans_scores
from ._base import Runs, eval_split, evaluated, raw_pixels, register_step, summary_line


@register_step("clustering", needs_labels=True, produces=("kmeans_acc", "kmeans_nmi"))
def step_clustering(ctx, runs: Runs = None,
                    n_init: Annotated[int, Field(ge=1, le=1000, description="k-means restarts")] = 10,
                    baseline: Annotated[bool, Field(description="also cluster the raw pixels")] = True):
    """k-means (as many clusters as classes) on the test codes and, as the baseline, on the raw
    pixels: ``kmeans_acc`` (Hungarian-matched accuracy) and ``kmeans_nmi``."""
    test = eval_split(ctx)
    targets = [(r.name, r.metrics, encode(m, test)) for r, m in evaluated(ctx, runs)]
    if baseline:
        targets.insert(0, ("raw-pixels", raw_pixels(ctx), test.x.flatten(1)))
    lines = [f"k-means on test features ({len(test.class_names)} clusters):"]
    for name, entry, features in targets:
        scores = kmeans_scores(features, test.y, len(test.class_names), n_init, ctx.study.seed)
        entry.update(scores)
        lines.append(summary_line(name, {"accuracy": scores["kmeans_acc"], "NMI": scores["kmeans_nmi"]}))
    ctx.summary.extend(lines)
