"""Study steps: what a study does after training, named by ``kind`` in ``[[steps]]``.

A step is ``fn(ctx, **params)``; it adds figures (``ctx.save_figure``), metrics (to a run's
``ctx.run(name).metrics``) and summary lines (``ctx.summary``). Parameters are checked against
the signature when the study loads.
"""

from __future__ import annotations

import math

from .study import register_step


@register_step("loss_curves")
def loss_curves(ctx, log: bool = False):
    """Training and validation loss of all runs in one plot."""
    from .report.plots import loss_curves as plot

    entries = [r.metrics for r in ctx.runs]
    ctx.save_figure("loss_curves", plot(entries, f"{ctx.study.name}: learning curves", log=log))


@register_step("reconstructions")
def reconstructions(ctx, runs: list | None = None, n: int = 15):
    """Originals vs reconstructions of the first ``n`` test images, one figure per run."""
    from .report.plots import compare_reconstructions

    test = ctx.splits.get("test", ctx.splits.get("val"))
    for r in ctx.runs if runs is None else [ctx.run(name) for name in runs]:
        if r.model is None or r.history is None:
            continue
        fig = compare_reconstructions(r.model, test, n, title=f"{r.spec.name}: test reconstructions")
        ctx.save_figure(f"reconstructions-{r.spec.name}", fig)


@register_step("comparison")
def comparison(ctx):
    """A short comparison of models and sweep values, drawn from the measured numbers."""
    ok = [r.metrics for r in ctx.runs if r.metrics.get("status") in ("completed", "stopped_early")]
    lines = ["Comparison:"]
    for r in ctx.runs:
        m = r.metrics
        if m.get("status") in ("diverged", "failed"):
            lines.append(f"- {m['name']} {m['status']}: {m.get('reason', '')}")
    if ok:
        best = min(ok, key=lambda m: m["val_loss"])
        fastest = min(ok, key=lambda m: m["seconds"])
        lines.append(f"- Lowest validation loss: {best['name']} ({best['val_loss']:.4f}, test "
                     f"{best['test_loss']:.4f}) after {best['epochs_run']} epochs.")
        lines.append(f"- Fastest: {fastest['name']} ({fastest['seconds']:.1f} s, "
                     f"{fastest['seconds_per_epoch']:.2f} s/epoch).")
    # Models compared at equal sweep values, and sweep values compared for equal models.
    labels = sorted({m["label"] for m in ok})
    sweeps = sorted({tuple(sorted(m["sweep"].items())) for m in ok})
    by = {(m["label"], tuple(sorted(m["sweep"].items()))): m for m in ok}
    if len(labels) == 2:
        a, b = labels
        for s in sweeps:
            if (a, s) in by and (b, s) in by:
                ma, mb = by[(a, s)], by[(b, s)]
                diff = mb["val_loss"] - ma["val_loss"]
                where = ", ".join(f"{k}={v}" for k, v in s) or "same settings"
                lines.append(f"- At {where}: {b} val loss {mb['val_loss']:.4f} vs {a} "
                             f"{ma['val_loss']:.4f} ({'+' if diff >= 0 else ''}{diff:.4f}); epochs "
                             f"{mb['epochs_run']} vs {ma['epochs_run']}.")
    for label in labels:
        runs = sorted((m for m in ok if m["label"] == label), key=lambda m: m.get("batch_size", 0))
        if len(runs) >= 2 and len({m["batch_size"] for m in runs}) == len(runs):
            small, large = runs[0], runs[-1]
            speed = small["seconds_per_epoch"] / max(large["seconds_per_epoch"], 1e-9)
            lines.append(
                f"- {label}: batch {small['batch_size']} reaches val loss {small['val_loss']:.4f} in "
                f"{small['epochs_run']} epochs ({small['seconds']:.1f} s); batch {large['batch_size']} "
                f"{large['val_loss']:.4f} in {large['epochs_run']} epochs ({large['seconds']:.1f} s); "
                f"an epoch at batch {large['batch_size']} is {speed:.1f}× faster."
            )
    if len(lines) > 1:
        ctx.summary.extend(lines)


