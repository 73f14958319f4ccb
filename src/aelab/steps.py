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

    test = _eval_split(ctx)
    for r in _trained(ctx, runs):
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




# ---------------------------------------------------------------- the autoencoder zoo (keras-tour, conv-lr)

VERDICTS = ("learning", "not learning", "diverged", "failed")


def _trained(ctx, runs: list | None):
    """The named runs (all by default) that have a trained model."""
    chosen = ctx.runs if runs is None else [ctx.run(name) for name in runs]
    return [r for r in chosen if r.model is not None and r.history is not None]


def _eval_split(ctx):
    """The split that evaluations report on: test, or validation when there is no test split."""
    return ctx.splits["test"] if "test" in ctx.splits else ctx.splits["val"]


@register_step("code_activation")
def code_activation(ctx, runs: list | None = None):
    """``mean_code_activation``: the mean of every code unit over the test set, per run (the blog
    compares it for the simple and the L1-sparse model)."""
    from .evaluate import encode

    test = _eval_split(ctx)
    for r in _trained(ctx, runs):
        r.metrics["mean_code_activation"] = encode(r.model, test).double().mean().item()


@register_step("denoising")
def denoising(ctx, run: str = "denoising", n: int = 10):
    """Noisy test inputs, the model's output and the clean targets, with the run's input_noise."""
    from .report.plots import denoising_grid

    for r in _trained(ctx, [run]):
        noise = r.spec.train.input_noise or 0.5
        fig = denoising_grid(r.model, _eval_split(ctx), noise, n, seed=ctx.study.seed,
                             title=f"{run}: noise {noise}·N(0, 1), clipped to [0, 1]")
        ctx.save_figure(f"denoising-{run}", fig)


@register_step("code_images")
def code_images(ctx, run: str = "conv", n: int = 10):
    """The codes of the first ``n`` test images drawn as images (the blog's conv encodings)."""
    from .report.plots import code_images as plot

    for r in _trained(ctx, [run]):
        ctx.save_figure(f"codes-{run}", plot(r.model, _eval_split(ctx), n, title=f"{run}: codes"))


@register_step("latent_space")
def latent_space(ctx, run: str = "vae", n: int = 15):
    """A scatter of the test set's latent means coloured by class, and an n×n decoded manifold."""
    import torch

    from .report.plots import latent_manifold, latent_scatter

    test = _eval_split(ctx)
    for r in _trained(ctx, [run]):
        r.model.eval()
        with torch.inference_mode():
            codes = r.model.encode(test.x.to(next(r.model.parameters()).device)).cpu()
        if codes.dim() != 2 or codes.shape[1] < 2:
            ctx.summary.append(f"latent_space: run {run} has codes of shape {tuple(codes.shape[1:])}, "
                               "not a flat code of 2 or more dimensions; no latent plots.")
            continue
        ctx.save_figure(f"latent-{run}", latent_scatter(codes, test.y, test.class_names,
                                                        title=f"{run}: test set in latent space"))
        ctx.save_figure(f"manifold-{run}", latent_manifold(r.model, n, title=f"{run}: decoded {n}×{n} manifold"))


@register_step("run_table")
def run_table(ctx):
    """A per-run table in the summary: data, epochs, batch, optimizer, final losses, wall time,
    seconds per epoch, peak memory and mean code activation (if measured)."""
    info = ctx.data_info
    data = info.get("dataset", "?")
    if info.get("fallback_used"):
        data += f" (fallback: {info.get('requested')} was not found)"
    sizes = " / ".join(f"{v:,} {k}" for k, v in info.get("splits", {}).items())
    lines = [f"Data: {data}; {sizes} images.",
             f"{'run':<18}{'epochs':>7}{'batch':>6}  {'optimizer':<18}{'train':>9}{'val':>9}{'test':>9}"
             f"{'time s':>8}{'s/ep':>7}{'peak MB':>8}{'code act':>9}"]

    def num(v, spec):
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)

    for r in ctx.runs:
        m, t = r.metrics, r.spec.train
        opt = f"{t.optimizer} {num(t.learning_rate, 'g')}" if t.learning_rate else t.optimizer
        lines.append(
            f"{m['name']:<18}{num(m.get('epochs_run'), 'd'):>7}{t.batch_size:>6}  {opt:<18}"
            f"{num(m.get('train_loss'), '.4f'):>9}{num(m.get('val_loss'), '.4f'):>9}"
            f"{num(m.get('test_loss'), '.4f'):>9}{num(m.get('seconds'), '.1f'):>8}"
            f"{num(m.get('seconds_per_epoch'), '.2f'):>7}{num(m.get('peak_rss_mb'), '.0f'):>8}"
            f"{num(m.get('mean_code_activation'), '.4f'):>9}"
        )
    ctx.summary.extend(lines)


@register_step("lr_verdicts")
def lr_verdicts(ctx, min_drop: float = 0.01):
    """A verdict per run, stored as ``verdict`` (and ``learning_rate``) in its metrics:

    - "diverged": a loss became NaN or infinite (fit stops there; the epoch is reported);
    - "not learning": the validation loss (training loss without a validation set) fell by less
      than ``min_drop`` (1%) of its first-epoch value between the first and the last epoch;
    - "learning": otherwise; "failed" if the run could not be trained at all.
    """
    lines = [f"Verdicts (not learning = validation loss fell by less than {min_drop:.0%} of its "
             "first value over the run; diverged = a NaN or infinite loss):"]
    for r in ctx.runs:
        m = r.metrics
        lr = r.spec.train.learning_rate
        m["learning_rate"] = lr
        hist = m.get("history") or []
        key = "val_loss" if hist and "val_loss" in hist[0] else "train_loss"
        if m.get("status") == "diverged":
            m["verdict"], why = "diverged", m.get("reason", "")
            m["diverged_epoch"] = len(hist)
        elif m.get("status") == "failed" or not hist:
            m["verdict"], why = "failed", m.get("reason", "")
        else:
            first, last = hist[0][key], hist[-1][key]
            drop = (first - last) / abs(first) if first else 0.0
            m["verdict"] = "learning" if drop >= min_drop else "not learning"
            why = f"{key} {first:.4g} -> {last:.4g} (fell {drop:.1%}) over {len(hist)} epochs"
        lines.append(f"- {m['name']} (learning rate {lr:g}): {m['verdict']}; {why}"
                     if lr else f"- {m['name']}: {m['verdict']}; {why}")
    ctx.summary.extend(lines)


# ---------------------------------------------------------------- sparse codes and novelty (SPEC 1.3, 1.5)
# Each step evaluates the trained models of the chosen runs (default: all) and writes plain-named
# metrics into their entries; baselines on raw pixels go into one extra "raw-pixels" entry.


def _evaluated_runs(ctx, runs: list | None):
    """The chosen runs that have a trained, finite model; k-sparse runs get their ``k`` noted."""
    out = [r for r in _trained(ctx, runs) if r.metrics.get("status") != "diverged"]
    for r in out:
        if hasattr(r.model, "k"):
            r.metrics["k"] = r.model.k
    return out


def _raw_pixels(ctx) -> dict:
    """The baseline entry for features that are the pixels themselves (made on first use)."""
    for e in ctx.extra_entries:
        if e.get("name") == "raw-pixels":
            return e
    entry = {"name": "raw-pixels", "model": None, "label": "raw-pixels"}
    ctx.extra_entries.append(entry)
    return entry


def _line(name: str, values: dict) -> str:
    return f"- {name}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in values.items())


@register_step("linear_probe", needs_labels=True)
def linear_probe(ctx, runs: list | None = None, Cs: list | None = None, max_iter: int = 100,
                 baseline: bool = True):
    """Logistic regression on frozen codes (C picked on validation, accuracy on test), and on
    raw pixels as the baseline: ``probe_accuracy``, ``probe_C``, ``probe_per_class_accuracy``."""
    from .errors import ConfigError
    from .evaluate import accuracy_report, encode
    from .evaluate import linear_probe as probe

    if "val" not in ctx.splits or "test" not in ctx.splits:
        raise ConfigError("Step linear_probe picks C on a validation split and reports test accuracy; "
                          "give data.split three weights (train, val, test).")
    Cs = Cs or [0.001, 0.01, 0.1]
    tr, va, te = ctx.splits["train"], ctx.splits["val"], ctx.splits["test"]
    names = te.class_names
    targets = [(r.spec.name, r.metrics, lambda d, m=r.model: encode(m, d))
               for r in _evaluated_runs(ctx, runs)]
    if baseline:
        targets.insert(0, ("raw-pixels", _raw_pixels(ctx), lambda d: d.x.flatten(1)))
    lines = ["Linear probe (logistic regression on frozen features, test accuracy):"]
    for name, entry, features in targets:
        res = probe(*((features(s), s.y) for s in (tr, va, te)), Cs=Cs, max_iter=max_iter)
        rep = accuracy_report(te.y, res["predictions"], names)
        entry.update(probe_accuracy=res["accuracy"], probe_C=res["C"],
                     probe_val_accuracy=res["val_accuracy"],
                     probe_per_class_accuracy=rep["per_class_accuracy"])
        lines.append(_line(name, {"accuracy": res["accuracy"], "C": res["C"]}))
    ctx.summary.extend(lines)


@register_step("finetune", needs_labels=True)
def finetune(ctx, runs: list | None = None, head: list | None = None, epochs: int = 10,
             batch_size: int = 128, learning_rate: float = 1e-3, confusion: bool = True):
    """Encoder + softmax head (``head`` hidden sizes, default [10]) trained end to end; logs train
    error / test accuracy per epoch: ``finetune_accuracy``, ``per_class_accuracy``, a confusion
    matrix figure per run and a per-class table."""
    from rich.table import Table

    from .evaluate import accuracy_report
    from .evaluate import finetune as train_classifier
    from .report.plots import confusion_matrix

    head = [10] if head is None else head
    train, test = ctx.splits["train"], _eval_split(ctx)
    names = test.class_names
    table = Table(title="Fine-tuned classifiers: test accuracy per class", title_justify="left")
    table.add_column("class")
    per_class = {}
    lines = [f"Fine-tuned classifier (encoder + head {head} + softmax, {epochs} epochs, test accuracy):"]
    for r in _evaluated_runs(ctx, runs):
        ctx.console.print(f"\n[bold]Fine-tuning {r.spec.name}[/bold]: encoder + head {head} → "
                          f"{len(names)} classes")
        res = train_classifier(r.model, train, test, len(names), head, epochs, batch_size,
                               learning_rate, seed=ctx.study.seed,
                               log=lambda line: ctx.console.print(line, highlight=False))
        rep = accuracy_report(test.y, res["predictions"], names)
        r.metrics.update(finetune_accuracy=res["accuracy"], per_class_accuracy=rep["per_class_accuracy"],
                         confusion=rep["confusion"], finetune_history=res["history"])
        per_class[r.spec.name] = rep["per_class_accuracy"]
        lines.append(_line(r.spec.name, {"accuracy": res["accuracy"]}))
        if confusion:
            fig = confusion_matrix(rep["confusion"], names,
                                   f"{r.spec.name} fine-tuned: accuracy {res['accuracy']:.4f}")
            ctx.save_figure(f"confusion-{r.spec.name}", fig)
    for run in per_class:
        table.add_column(run, justify="right")
    for name in names:
        table.add_row(name, *(f"{pc[name]:.4f}" for pc in per_class.values()))
    if per_class:
        ctx.console.print(table)
        ctx.summary.extend(lines)


@register_step("clustering", needs_labels=True)
def clustering(ctx, runs: list | None = None, n_init: int = 10, baseline: bool = True):
    """k-means (as many clusters as classes) on the test codes and, as the baseline, on the raw
    pixels: ``kmeans_acc`` (Hungarian-matched accuracy) and ``kmeans_nmi``."""
    from .evaluate import encode, kmeans_scores

    test = _eval_split(ctx)
    targets = [(r.spec.name, r.metrics, encode(r.model, test)) for r in _evaluated_runs(ctx, runs)]
    if baseline:
        targets.insert(0, ("raw-pixels", _raw_pixels(ctx), test.x.flatten(1)))
    lines = [f"k-means on test features ({len(test.class_names)} clusters):"]
    for name, entry, features in targets:
        scores = kmeans_scores(features, test.y, len(test.class_names), n_init, ctx.study.seed)
        entry.update(scores)
        lines.append(_line(name, {"accuracy": scores["kmeans_acc"], "NMI": scores["kmeans_nmi"]}))
    ctx.summary.extend(lines)


@register_step("sparsity")
def sparsity(ctx, runs: list | None = None, threshold: float = 1e-2):
    """Mean activation, fraction of active units per sample and dead units of the test codes."""
    from .evaluate import encode, sparsity_stats

    test = _eval_split(ctx)
    lines = [f"Code sparsity on test images (active: |z| > {threshold:g}):"]
    for r in _evaluated_runs(ctx, runs):
        stats = sparsity_stats(encode(r.model, test), threshold)
        r.metrics.update(stats)
        lines.append(_line(r.spec.name, {"mean activation": stats["mean_activation"],
                                         "active fraction": stats["active_fraction"],
                                         "dead units": f"{stats['dead_units']}/{stats['code_size']}"}))
    ctx.summary.extend(lines)


@register_step("filters")
def filters(ctx, runs: list | None = None, n: int = 64):
    """The decoder's learned filters (what each code unit draws) as an image grid per run."""
    from .evaluate import decoder_filters
    from .report.plots import filter_grid

    for r in _evaluated_runs(ctx, runs):
        ctx.save_figure(f"filters-{r.spec.name}",
                        filter_grid(decoder_filters(r.model, n), f"{r.spec.name}: decoder filters"))


@register_step("accuracy_vs_k")
def accuracy_vs_k(ctx):
    """Probe and fine-tune accuracy of the k-sparse runs against k; other runs and the raw-pixel
    probe as horizontal reference lines. Run after linear_probe / finetune."""
    from .report.plots import accuracy_vs_k as plot

    runs = _evaluated_runs(ctx, None)
    points: dict[str, list] = {}
    refs = {}
    for key, what in (("probe_accuracy", "linear probe"), ("finetune_accuracy", "fine-tuned")):
        pts = [(r.model.k, r.metrics[key]) for r in runs if "k" in r.metrics and key in r.metrics]
        if pts:
            points[f"k-sparse, {what}"] = pts
        if key == "probe_accuracy":
            refs.update({f"{r.spec.name}, {what}": r.metrics[key] for r in runs
                         if "k" not in r.metrics and key in r.metrics})
    raw = _raw_pixels(ctx)
    if "probe_accuracy" in raw:
        refs["raw pixels, linear probe"] = raw["probe_accuracy"]
    if points:
        ctx.save_figure("accuracy_vs_k", plot(points, refs, f"{ctx.study.name}: accuracy against k"))


@register_step("novelty")
def novelty(ctx, runs: list | None = None, dataset: str | None = None, part: str = "test",
            score: str = "mse"):
    """Score every image of an unfiltered dataset part (default: the test part of the study's
    dataset) by reconstruction error; classes absent from the training data are the novelties.
    Records ``auroc`` (all unseen vs seen) and ``auroc_per_class``, and a histogram per run."""
    import torch

    from .data import load_dataset
    from .errors import ConfigError
    from .evaluate import novelty_auroc, reconstruction_errors
    from .report.plots import score_histogram

    if score not in ("mse", "bce"):
        raise ConfigError(f"novelty score = {score!r} is not allowed; use 'mse' or 'bce'.")
    full = load_dataset(dataset or ctx.data_info["dataset"], part=part, data_dir=ctx.data_dir)
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
    for r in _evaluated_runs(ctx, runs):
        s = reconstruction_errors(r.model, full, score)
        res = novelty_auroc(s, full.y, seen, full.class_names)
        r.metrics.update(res, novelty_score=score)
        lines.append(_line(r.spec.name, {"overall": res["auroc"], **res["auroc_per_class"]}))
        fig = score_histogram(s[is_seen], s[~is_seen], f"{r.spec.name}: AUROC {res['auroc']:.4f}",
                              f"reconstruction error ({score} per pixel)")
        ctx.save_figure(f"novelty-{r.spec.name}", fig)
    ctx.summary.extend(lines)
