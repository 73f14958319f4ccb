"""Steps that judge in words: a comparison, a run table, learning-rate verdicts, observations."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from ..report.observations import observe
from ._base import register_step

# What lr_verdicts calls a run, in metrics.json's ``verdict``; the names below are the one spelling.
VERDICTS = LEARNING, NOT_LEARNING, DIVERGED, FAILED = ("learning", "not learning", "diverged", "failed")


@register_step("comparison")
def step_comparison(ctx):
    """A short comparison of models and sweep values, drawn from the measured numbers."""
    ok = [r for r in ctx.records if r.trained]
    lines = ["Comparison:"]
    for r in ctx.records:
        if r.status in ("diverged", "failed"):
            lines.append(f"- {r.name} {r.status}: {r.reason}")
    scored = [r for r in ok if r.val_loss is not None]
    if scored:
        best = min(scored, key=lambda r: r.val_loss)
        fastest = min(ok, key=lambda r: r.seconds)
        test = f", test {best.test_loss:.4f}" if best.test_loss is not None else ""
        lines.append(f"- Lowest validation loss: {best.name} ({best.val_loss:.4f}{test}) after "
                     f"{best.epochs_run} epochs.")
        lines.append(f"- Fastest: {fastest.name} ({fastest.seconds:.1f} s, "
                     f"{fastest.seconds_per_epoch or 0:.2f} s/epoch).")
    # Models compared at equal sweep values, and sweep values compared for equal models.
    labels = sorted({r.label for r in scored})
    key = {r.name: tuple(sorted((k, str(v)) for k, v in r.sweep.items())) for r in scored}
    by = {(r.label, key[r.name]): r for r in scored}
    if len(labels) == 2:
        a, b = labels
        for s in sorted({key[r.name] for r in scored}):
            if (a, s) in by and (b, s) in by:
                ra, rb = by[(a, s)], by[(b, s)]
                diff = rb.val_loss - ra.val_loss
                where = ", ".join(f"{k}={v}" for k, v in s) or "same settings"
                lines.append(f"- At {where}: {b} val loss {rb.val_loss:.4f} vs {a} {ra.val_loss:.4f} "
                             f"({'+' if diff >= 0 else ''}{diff:.4f}); epochs {rb.epochs_run} vs "
                             f"{ra.epochs_run}.")
    for label in labels:
        group = sorted((r for r in scored if r.label == label), key=lambda r: r.batch_size)
        if len(group) >= 2 and len({r.batch_size for r in group}) == len(group):
            small, large = group[0], group[-1]
            speed = (small.seconds_per_epoch or 0) / max(large.seconds_per_epoch or 0, 1e-9)
            lines.append(
                f"- {label}: batch {small.batch_size} reaches val loss {small.val_loss:.4f} in "
                f"{small.epochs_run} epochs ({small.seconds:.1f} s); batch {large.batch_size} "
                f"{large.val_loss:.4f} in {large.epochs_run} epochs ({large.seconds:.1f} s); "
                f"an epoch at batch {large.batch_size} is {speed:.1f}× faster.")
    if len(lines) > 1:
        ctx.summary.extend(lines)


@register_step("run_table")
def step_run_table(ctx):
    """A per-run table in the summary: data, epochs, batch, optimizer, final losses, wall time,
    seconds per epoch, peak memory and mean code activation (if measured)."""
    info = ctx.data_info
    data = info.dataset
    if info.fallback_used:
        data += f" (fallback: {info.requested} was not found)"
    sizes = " / ".join(f"{v:,} {k}" for k, v in info.splits.items())
    lines = [f"Data: {data}; {sizes} images.",
             f"{'run':<18}{'epochs':>7}{'batch':>6}  {'optimizer':<18}{'train':>9}{'val':>9}{'test':>9}"
             f"{'time s':>8}{'s/ep':>7}{'peak MB':>8}{'code act':>9}"]

    def num(v, spec):
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)

    for r in ctx.records:
        opt = f"{r.optimizer} {num(r.learning_rate, 'g')}" if r.learning_rate else r.optimizer
        lines.append(
            f"{r.name:<18}{num(r.epochs_run, 'd'):>7}{r.batch_size:>6}  {opt:<18}"
            f"{num(r.train_loss, '.4f'):>9}{num(r.val_loss, '.4f'):>9}{num(r.test_loss, '.4f'):>9}"
            f"{num(r.seconds, '.1f'):>8}{num(r.seconds_per_epoch, '.2f'):>7}{num(r.peak_rss_mb, '.0f'):>8}"
            f"{num(r.metrics.get('mean_code_activation'), '.4f'):>9}")
    ctx.summary.extend(lines)


@register_step("lr_verdicts", produces=("verdict", "diverged_epoch"))
def step_lr_verdicts(ctx, min_drop: Annotated[float, Field(gt=0, lt=1, description=(
        "the least relative fall of the loss over the run that counts as learning"))] = 0.01):
    """A verdict per run, stored as ``verdict`` in its metrics (and ``diverged_epoch``):

    - "diverged": a loss became NaN or infinite (fit stops there; the epoch is reported);
    - "not learning": the validation loss (training loss without a validation set) fell by less
      than ``min_drop`` (1%) of its first-epoch value between the first and the last epoch;
    - "learning": otherwise; "failed" if the run could not be trained at all.
    """
    lines = [f"Verdicts (not learning = validation loss fell by less than {min_drop:.0%} of its "
             "first value over the run; diverged = a NaN or infinite loss):"]
    for r in ctx.records:
        hist = r.history
        key = "val_loss" if hist and "val_loss" in hist[0] else "train_loss"
        if r.status == "diverged":
            verdict, why = DIVERGED, r.reason
            r.metrics["diverged_epoch"] = len(hist)
        elif r.status == "failed" or not hist:
            verdict, why = FAILED, r.reason
        else:
            first, last = hist[0][key], hist[-1][key]
            drop = (first - last) / abs(first) if first else 0.0
            verdict = LEARNING if drop >= min_drop else NOT_LEARNING
            why = f"{key} {first:.4g} -> {last:.4g} (fell {drop:.1%}) over {len(hist)} epochs"
        r.metrics["verdict"] = verdict
        lr = r.learning_rate
        lines.append(f"- {r.name} (learning rate {lr:g}): {verdict}; {why}" if lr
                     else f"- {r.name}: {verdict}; {why}")
    ctx.summary.extend(lines)


@register_step("observations")
def step_observations(ctx, window: Annotated[int | None, Field(ge=1, le=100_000, description=(
        "epochs looked back to judge whether a loss was still falling (default: the early-stopping "
        "patience, else 5)"))] = None,
                      gap: Annotated[float, Field(gt=0, le=10, description=(
                               "validation loss above training loss by more than this fraction counts "
                               "as a generalisation gap"))] = 0.1):
    """Observations in words, each computed from the measured numbers: which batch size reaches
    the lower loss and at what time per epoch; whether a regulariser changed the loss and the
    code (with a ``sparsity`` or ``code_activation`` step before it); when early stopping ended
    each run and whether its loss was still falling; over- or under-fitting from the train and
    validation losses. Put it after the steps whose numbers it should use."""
    shape = list(ctx.data_info.image_shape) if ctx.data_info is not None else None
    if shape is None and "train" in ctx.splits:
        shape = list(ctx.splits["train"].x.shape[1:])
    stopping = {s.name: s.train.early_stopping for s in getattr(ctx.study, "runs", [])}
    ctx.summary.extend(observe(ctx.records, stopping, shape, window, gap))
