"""The novelty step: reconstruction error as a score for classes left out of training."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..datasets import check_dataset_name, class_indices, load_dataset
from ..errors import ConfigError
from ..evaluate import novelty_auroc, reconstruction_errors
from ..registry import DATASETS
from ._base import Runs, evaluated, register_step, summary_line


def _check_novelty(params, runs, data, where) -> None:
    """For built-in datasets the classes are known at load: the scored set must hold the
    training classes, and some classes must be left out of training to be novel."""
    if params["dataset"] is not None:
        check_dataset_name(params["dataset"], f"{where}.dataset")
    trained, scored = (DATASETS.get(n.strip().lower()) if n.strip().lower() in DATASETS else None
                       for n in (data.dataset, params["dataset"] or data.dataset))
    if trained is None or scored is None:
        return  # a file or folder: its classes are known when it is read
    names = list(trained.info.classes)
    if data.classes is not None:
        names = [names[i] for i in sorted(class_indices(data.classes, names, trained.name, ConfigError))]
    lower = [c.lower() for c in scored.info.classes]
    missing = [c for c in names if c.lower() not in lower]
    if missing:
        raise ConfigError(f"{where} (novelty) scores {scored.name}, whose classes do not include the "
                          f"training classes {', '.join(missing[:5])}; score a dataset with the same classes.")
    if len(names) == len(lower):
        raise ConfigError(f"{where} (novelty) needs classes left out of training to score as novel, but "
                          f"the study trains on all {len(names)} classes of {trained.name}; set data.classes.")


@register_step("novelty", produces=("auroc", "auroc_per_class", "novelty_score"), check=_check_novelty)
def step_novelty(ctx, runs: Runs = None,
                 dataset: Annotated[str | None, Field(min_length=1, max_length=4096, description=(
                     "the dataset to score (default: the study's own, unfiltered)"))] = None,
                 part: Annotated[Literal["train", "test", "all"], Field(description=(
                     "which part of it to score"))] = "test",
                 score: Annotated[Literal["mse", "bce"], Field(description=(
                     "reconstruction error per pixel used as the novelty score"))] = "mse"):
    """Score every image of an unfiltered dataset part (default: the test part of the study's
    dataset) by reconstruction error; classes absent from the training data are the novelties.
    Records ``auroc`` (all unseen vs seen) and ``auroc_per_class``, and a histogram per run."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import score_histogram

    full = load_dataset(dataset or ctx.data_info.dataset, part=part, data_dir=ctx.data_dir)
    if full.y is None:
        raise ConfigError(f"Step novelty needs labels to know which classes are new; {full.name} has none.")
    lower = [c.lower() for c in full.class_names]
    trained_on = ctx.splits["train"].class_names
    missing = [c for c in trained_on if c.lower() not in lower]
    if missing:
        raise ConfigError(f"Step novelty: training classes {missing} are not classes of {full.name}.")
    seen = [lower.index(c.lower()) for c in trained_on]
    if len(seen) == len(full.class_names):
        raise ConfigError("Step novelty needs classes left out of training; set data.classes.")
    is_seen = torch.isin(full.y, torch.tensor(seen))
    lines = [f"Novelty detection on {full.name} {part} ({len(full):,} images; seen: "
             f"{', '.join(trained_on)}), AUROC of the reconstruction error ({score}):"]
    for r, model in evaluated(ctx, runs):
        s = reconstruction_errors(model, full, score)
        res = novelty_auroc(s, full.y, seen, full.class_names)
        r.metrics.update(res, novelty_score=score)
        lines.append(summary_line(r.name, {"overall": res["auroc"], **res["auroc_per_class"]}))
        fig = score_histogram(s[is_seen], s[~is_seen], f"{r.name}: AUROC {res['auroc']:.4f}",
                              f"reconstruction error ({score} per pixel)")
        ctx.save_figure(f"novelty-{r.name}", fig,
                        f"Reconstruction errors of {r.name} on seen and unseen classes; the more "
                        "they separate, the higher the AUROC.")
    ctx.summary.extend(lines)
