"""Study steps: what a study does after training, named by ``kind`` in ``[[steps]]``.

A step is ``fn(ctx, **params)`` registered in ``aelab.registry.STEPS``; its parameters are
declared by annotations and checked when the study loads, as are its references to runs
(``runs`` names runs or ``[[models]]`` entries) and what it ``needs`` of the data (labels, a
validation split). It reads the run records and trained models from the
:class:`StudyContext` and adds figures, metrics (``record.metrics``) and summary lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from .errors import ConfigError
from .params import listing, short, validate
from .registry import STEPS

Runs = Annotated[list[str] | None, Field(min_length=1, max_length=10_000, description=(
    "the runs to use, by run name or [[models]] name; all suitable runs when left out"))]
Count = Annotated[int, Field(ge=1, le=1000)]


@dataclass
class StudyContext:
    """What a study step sees; steps add figures, metrics and summary lines."""

    study: object  # config.Study
    splits: dict  # "train"/"val"/"test" -> data.Dataset
    records: list  # records.RunRecord per run, in study order
    models: dict  # run name -> trained model (runs that trained at least one epoch)
    folder: object  # runs.RunFolder
    console: object  # rich Console
    summary: list[str] = field(default_factory=list)  # verdicts / comparisons, in words
    baselines: list[dict] = field(default_factory=list)  # e.g. the raw-pixel entry
    figures: list[str] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)
    data_info: dict = field(default_factory=dict)
    data_dir: object = None  # the data folder the study ran with, for steps that load more data

    def selected(self, runs: list[str] | None = None) -> list:
        """Records named by run or model-entry name (all runs by default), in study order."""
        return [r for r in self.records if runs is None or set(names(r)) & set(runs)]

    def trained(self, runs: list[str] | None = None) -> list:
        """(record, model) of the selected runs that trained to a usable model."""
        return [(r, self.models[r.name]) for r in self.selected(runs) if r.trained and r.name in self.models]

    def save_figure(self, name: str, fig, caption: str = "") -> None:
        self.folder.save_figure(name, fig)
        self.figures.append(name)
        if caption:
            self.captions[name] = caption


def register_step(name: str, needs: tuple[str, ...] = (), check=None):
    """Decorator: a study step ``fn(ctx, **params)`` run after training.

    ``needs``: "labels" (checked right after the data loads, before training) and/or "val"
    (a validation split, checked when the study loads). ``check(params, runs, data)`` may raise
    ConfigError for anything else knowable at load time.
    """
    return STEPS.register(name, needs=needs, check=check)


def names(run) -> tuple[str, ...]:
    """What a step's ``runs`` may call a run (a plan.RunSpec or records.RunRecord): its name,
    its [[models]] entry, and its name without the seed, which selects every seed of a
    repeated run (``stacked-bs256`` for ``stacked-bs256-seed0`` ... ``-seed4``)."""
    base = run.name.rsplit("-seed", 1)[0] if "seed" in run.sweep else run.name
    return (run.name, run.label, base)


@dataclass
class StepSpec:
    kind: str  # a registered step, e.g. "loss_curves"
    params: dict = field(default_factory=dict)  # checked, defaults filled in
    given: dict = field(default_factory=dict)  # as written in the study


def check_steps(raw: list, runs: list, data) -> list[StepSpec]:
    """The [[steps]] of a study, each checked against its declaration and the planned runs."""
    known = {n for r in runs for n in names(r)}
    out = []
    for i, s in enumerate(raw):
        where = f"steps[{i}]"
        if not isinstance(s, dict) or "kind" not in s:
            raise ConfigError(f"{where} needs a kind; choose one of: {', '.join(STEPS.names())}.")
        entry = STEPS.get(s["kind"], where=f"{where}.kind")
        given = {k: v for k, v in s.items() if k != "kind"}
        params = validate(entry.fn, given, where)
        for name in params.get("runs") or []:
            if name not in known:
                raise ConfigError(f"{where}.runs: no run or model named {short(name)}; there are: "
                                  f"{listing(sorted(known))}.")
        if "val" in entry.meta["needs"] and not data.has_val:
            raise ConfigError(f"{where} ({s['kind']}) needs a validation split, but data.split = "
                              f"{data.split} has none; give three weights (train, val, test).")
        if entry.meta["check"]:
            entry.meta["check"](params, runs, data, where)
        out.append(StepSpec(s["kind"], params, given))
    return out


def _eval_split(ctx):
    """The split evaluations report on: test, or validation when there is no test split."""
    return ctx.splits["test"] if "test" in ctx.splits else ctx.splits["val"]


def _setting(record, model, key: str):
    """A run's value of a model setting: as swept or given, else the built model's."""
    if key in record.sweep:
        return record.sweep[key]
    if key in record.params:
        return record.params[key]
    return getattr(model, "spec", {}).get("params", {}).get(key)


def _line(name: str, values: dict) -> str:
    return f"- {name}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in values.items())


# ---------------------------------------------------------------- every study


@register_step("loss_curves")
def loss_curves(ctx, log: Annotated[bool, Field(description="logarithmic loss axis")] = False):
    """Training and validation loss per epoch, one panel per model, one colour per swept value."""
    from .report.plots import loss_curves as plot

    entries = [r.to_json() for r in ctx.records]
    ctx.save_figure("loss_curves", plot(entries, f"{ctx.study.name}: learning curves", log=log),
                    "Training (dashed) and validation (solid) loss per epoch, one panel per model; "
                    "a marker shows the best epoch and where early stopping ended a run.")


@register_step("reconstructions")
def reconstructions(ctx, runs: Runs = None, n: Annotated[Count, Field(description=(
        "test images shown"))] = 15):
    """Originals vs reconstructions of the first ``n`` test images, one figure per run."""
    from .report.plots import compare_reconstructions

    test = _eval_split(ctx)
    for r, model in ctx.trained(runs):
        loss = f", test loss {r.test_loss:.4f}" if r.test_loss is not None else ""
        fig = compare_reconstructions(model, test, n, title=f"{r.name}: test reconstructions{loss}")
        ctx.save_figure(f"reconstructions-{r.name}", fig,
                        f"The first {n} test images (top) and their reconstructions by {r.name} "
                        f"(bottom){loss}.")


@register_step("comparison")
def comparison(ctx):
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


# ---------------------------------------------------------------- the autoencoder zoo (keras-tour, conv-lr)

VERDICTS = ("learning", "not learning", "diverged", "failed")


@register_step("code_activation")
def code_activation(ctx, runs: Runs = None):
    """``mean_code_activation``: the mean of every code unit over the test set, per run (the blog
    compares it for the simple and the L1-sparse model)."""
    from .evaluate import encode

    test = _eval_split(ctx)
    for r, model in ctx.trained(runs):
        r.metrics["mean_code_activation"] = encode(model, test).double().mean().item()


@register_step("denoising")
def denoising(ctx, runs: Runs = None, n: Annotated[Count, Field(description="test images shown")] = 10):
    """Noisy test inputs, the model's output and the clean targets, for the runs trained with
    ``input_noise`` (default: all of them)."""
    from .report.plots import denoising_grid

    for r, model in ctx.trained(runs):
        noise = _train_config(ctx, r).input_noise
        if not noise and runs is None:
            continue
        noise = noise or 0.5
        fig = denoising_grid(model, _eval_split(ctx), noise, n, seed=r.seed,
                             title=f"{r.name}: noise {noise}·N(0, 1), clipped to [0, 1]")
        ctx.save_figure(f"denoising-{r.name}", fig,
                        f"Noisy test inputs (top), {r.name}'s output (middle) and the clean "
                        "targets (bottom).")


def _train_config(ctx, record):
    return next(s.train for s in ctx.study.runs if s.name == record.name)


@register_step("code_images")
def code_images(ctx, runs: Runs = None, n: Annotated[Count, Field(description="test images shown")] = 10):
    """The codes of the first ``n`` test images drawn as images (the blog's conv encodings), for
    runs whose codes are images (default: every such run)."""
    from .report.plots import code_images as plot

    for r, model in ctx.trained(runs):
        if runs is None and len(getattr(model, "code_shape", ())) != 3:
            continue
        ctx.save_figure(f"codes-{r.name}", plot(model, _eval_split(ctx), n, title=f"{r.name}: codes"),
                        f"The first {n} test images and their codes under {r.name}, each code "
                        "channel drawn as a small image.")


@register_step("latent_space")
def latent_space(ctx, runs: Runs = None, n: Annotated[Count, Field(
        description="the decoded manifold is n×n")] = 15):
    """A scatter of the test set's latent means coloured by class, and an n×n decoded manifold
    (default: the runs of variational models)."""
    import torch

    from .report.plots import latent_manifold, latent_scatter

    test = _eval_split(ctx)
    for r, model in ctx.trained(runs):
        if runs is None and r.model != "vae":
            continue
        model.eval()
        with torch.inference_mode():
            codes = model.encode(test.x.to(next(model.parameters()).device)).cpu()
        if codes.dim() != 2 or codes.shape[1] < 2:
            ctx.summary.append(f"latent_space: run {r.name} has codes of shape {tuple(codes.shape[1:])}, "
                               "not a flat code of 2 or more dimensions; no latent plots.")
            continue
        ctx.save_figure(f"latent-{r.name}", latent_scatter(codes, test.y, test.class_names,
                                                           title=f"{r.name}: test set in latent space"),
                        f"The test images' latent means under {r.name} (first two dimensions), "
                        "coloured by class.")
        ctx.save_figure(f"manifold-{r.name}", latent_manifold(model, n, title=f"{r.name}: decoded {n}×{n} manifold"),
                        f"Images decoded by {r.name} from an {n}×{n} grid of latent points at "
                        "Gaussian quantiles 0.05-0.95.")


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

    for r in ctx.records:
        opt = f"{r.optimizer} {num(r.learning_rate, 'g')}" if r.learning_rate else r.optimizer
        lines.append(
            f"{r.name:<18}{num(r.epochs_run, 'd'):>7}{r.batch_size:>6}  {opt:<18}"
            f"{num(r.train_loss, '.4f'):>9}{num(r.val_loss, '.4f'):>9}{num(r.test_loss, '.4f'):>9}"
            f"{num(r.seconds, '.1f'):>8}{num(r.seconds_per_epoch, '.2f'):>7}{num(r.peak_rss_mb, '.0f'):>8}"
            f"{num(r.metrics.get('mean_code_activation'), '.4f'):>9}")
    ctx.summary.extend(lines)


@register_step("lr_verdicts")
def lr_verdicts(ctx, min_drop: Annotated[float, Field(gt=0, lt=1, description=(
        "the least relative fall of the loss over the run that counts as learning"))] = 0.01):
    """A verdict per run, stored as ``verdict`` (and ``learning_rate``) in its metrics:

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
            verdict, why = "diverged", r.reason
            r.metrics["diverged_epoch"] = len(hist)
        elif r.status == "failed" or not hist:
            verdict, why = "failed", r.reason
        else:
            first, last = hist[0][key], hist[-1][key]
            drop = (first - last) / abs(first) if first else 0.0
            verdict = "learning" if drop >= min_drop else "not learning"
            why = f"{key} {first:.4g} -> {last:.4g} (fell {drop:.1%}) over {len(hist)} epochs"
        r.metrics["verdict"] = verdict
        lr = r.learning_rate
        lines.append(f"- {r.name} (learning rate {lr:g}): {verdict}; {why}" if lr
                     else f"- {r.name}: {verdict}; {why}")
    ctx.summary.extend(lines)


# ---------------------------------------------------------------- sparse codes and novelty (SPEC 1.3, 1.5)
# Each step evaluates the trained models of the chosen runs (default: all) and writes plain-named
# metrics into their records; baselines on raw pixels go into one "raw-pixels" entry.


def _evaluated(ctx, runs):
    """The chosen trained runs; k-sparse runs get their ``k`` noted."""
    out = ctx.trained(runs)
    for r, model in out:
        if r.model == "k-sparse":
            r.metrics["k"] = _setting(r, model, "k")
    return out


def _raw_pixels(ctx) -> dict:
    """The baseline entry for features that are the pixels themselves (made on first use)."""
    for e in ctx.baselines:
        if e.get("name") == "raw-pixels":
            return e
    entry = {"name": "raw-pixels", "model": None, "label": "raw-pixels"}
    ctx.baselines.append(entry)
    return entry


@register_step("linear_probe", needs=("labels", "val"))
def linear_probe(ctx, runs: Runs = None,
                 Cs: Annotated[list[Annotated[float, Field(gt=0, le=1e9)]] | None, Field(
                     min_length=1, max_length=100, description=(
                         "inverse regularisation strengths tried; the best on validation wins "
                         "(default [0.001, 0.01, 0.1])"))] = None,
                 max_iter: Annotated[int, Field(ge=1, le=100_000, description=(
                     "L-BFGS iterations per fit"))] = 100,
                 baseline: Annotated[bool, Field(description="also probe the raw pixels")] = True):
    """Logistic regression on frozen codes (C picked on validation, accuracy on test), and on
    raw pixels as the baseline: ``probe_accuracy``, ``probe_C``, ``probe_per_class_accuracy``."""
    from .evaluate import accuracy_report, encode
    from .evaluate import linear_probe as probe

    Cs = Cs or [0.001, 0.01, 0.1]
    tr, va, te = ctx.splits["train"], ctx.splits["val"], _eval_split(ctx)
    names = te.class_names
    targets = [(r.name, r.metrics, lambda d, m=m: encode(m, d)) for r, m in _evaluated(ctx, runs)]
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


@register_step("finetune", needs=("labels",))
def finetune(ctx, runs: Runs = None,
             head: Annotated[list[Annotated[int, Field(ge=1, le=100_000)]] | None, Field(
                 max_length=16, description="hidden sizes of the head on the codes (default [10])")] = None,
             epochs: Annotated[int, Field(ge=1, le=10_000, description="fine-tuning epochs")] = 10,
             batch_size: Annotated[int, Field(ge=1, le=1_000_000, description=(
                 "images per fine-tuning step"))] = 128,
             learning_rate: Annotated[float, Field(gt=0, le=10, description="Adam step size")] = 1e-3,
             confusion: Annotated[bool, Field(description="draw a confusion matrix per run")] = True):
    """Encoder + softmax head trained end to end with the training loop of the runs; logs train
    error / test accuracy per epoch: ``finetune_accuracy``, ``per_class_accuracy``, a confusion
    matrix figure per run and a per-class table."""
    from rich.table import Table
    from rich.text import Text  # class and run names are text, never markup

    from .evaluate import accuracy_report, encode
    from .evaluate import finetune as train_classifier
    from .report.plots import confusion_matrix

    head = [10] if head is None else head
    train, test = ctx.splits["train"], _eval_split(ctx)
    names = test.class_names
    table = Table()  # titled by a line of its own: a title wraps to the width of a narrow table
    table.add_column("class")
    per_class = {}
    lines = [f"Fine-tuned classifier (encoder + head {head} + softmax, {epochs} epochs, test accuracy):"]
    for r, model in _evaluated(ctx, runs):
        # The classifier's layer sizes, input to classes: 784-30-10-10 for a 30-unit code, head [10].
        network = "-".join(map(str, [train.x[0].numel(), encode(model, train.x[:1]).shape[1], *head,
                                     len(names)]))
        ctx.console.print(f"\nFine-tuning {r.name}: the {network} network (encoder + head {head} + "
                          f"softmax over {len(names)} classes)", markup=False, highlight=False)
        res = train_classifier(model, train, test, len(names), head, epochs, batch_size,
                               learning_rate, seed=r.seed,
                               log=lambda line: ctx.console.print(line, markup=False, highlight=False))
        rep = accuracy_report(test.y, res["predictions"], names)
        r.metrics.update(finetune_accuracy=res["accuracy"], per_class_accuracy=rep["per_class_accuracy"],
                         confusion=rep["confusion"], finetune_history=res["history"],
                         finetune_network=network)
        per_class[r.name] = rep["per_class_accuracy"]
        lines.append(_line(r.name, {"network": network, "accuracy": res["accuracy"]}))
        if confusion:
            fig = confusion_matrix(rep["confusion"], names,
                                   f"{r.name} fine-tuned: accuracy {res['accuracy']:.4f}")
            ctx.save_figure(f"confusion-{r.name}", fig,
                            f"Confusion matrix of the classifier fine-tuned from {r.name}'s encoder "
                            "on the test set (rows: true class, columns: predicted).")
    for run in per_class:
        table.add_column(Text(run), justify="right")
    for name in names:
        table.add_row(Text(name), *(f"{pc[name]:.4f}" for pc in per_class.values()))
    if per_class:
        ctx.console.print("\nFine-tuned classifiers: test accuracy per class", markup=False, highlight=False)
        ctx.console.print(table)
        ctx.summary.extend(lines)


@register_step("clustering", needs=("labels",))
def clustering(ctx, runs: Runs = None,
               n_init: Annotated[int, Field(ge=1, le=1000, description="k-means restarts")] = 10,
               baseline: Annotated[bool, Field(description="also cluster the raw pixels")] = True):
    """k-means (as many clusters as classes) on the test codes and, as the baseline, on the raw
    pixels: ``kmeans_acc`` (Hungarian-matched accuracy) and ``kmeans_nmi``."""
    from .evaluate import encode, kmeans_scores

    test = _eval_split(ctx)
    targets = [(r.name, r.metrics, encode(m, test)) for r, m in _evaluated(ctx, runs)]
    if baseline:
        targets.insert(0, ("raw-pixels", _raw_pixels(ctx), test.x.flatten(1)))
    lines = [f"k-means on test features ({len(test.class_names)} clusters):"]
    for name, entry, features in targets:
        scores = kmeans_scores(features, test.y, len(test.class_names), n_init, ctx.study.seed)
        entry.update(scores)
        lines.append(_line(name, {"accuracy": scores["kmeans_acc"], "NMI": scores["kmeans_nmi"]}))
    ctx.summary.extend(lines)


@register_step("sparsity")
def sparsity(ctx, runs: Runs = None, threshold: Annotated[float, Field(ge=0, le=1e6, description=(
        "a unit is active on a sample when |z| > threshold"))] = 1e-2):
    """Mean activation, fraction of active units per sample and dead units of the test codes."""
    from .evaluate import encode, sparsity_stats

    test = _eval_split(ctx)
    lines = [f"Code sparsity on test images (active: |z| > {threshold:g}):"]
    for r, model in _evaluated(ctx, runs):
        stats = sparsity_stats(encode(model, test), threshold)
        r.metrics.update(stats)
        lines.append(_line(r.name, {"mean activation": stats["mean_activation"],
                                    "active fraction": stats["active_fraction"],
                                    "dead units": f"{stats['dead_units']}/{stats['code_size']}"}))
    ctx.summary.extend(lines)


@register_step("filters")
def filters(ctx, runs: Runs = None, n: Annotated[Count, Field(description="filters shown")] = 64):
    """The decoder's learned filters (what each code unit draws) as an image grid per run."""
    from .evaluate import decoder_filters
    from .report.plots import filter_grid

    for r, model in _evaluated(ctx, runs):
        ctx.save_figure(f"filters-{r.name}", filter_grid(decoder_filters(model, n), f"{r.name}: decoder filters"),
                        f"What each of the first {n} code units of {r.name} adds to the decoder's "
                        "output, scaled to [0, 1] per unit.")


@register_step("accuracy_vs_k")
def accuracy_vs_k(ctx):
    """Probe and fine-tune accuracy of the k-sparse runs against their k (the swept setting);
    other runs and the raw-pixel probe as horizontal reference lines. Run after linear_probe /
    finetune."""
    from .report.plots import accuracy_vs_k as plot

    runs = _evaluated(ctx, None)
    points: dict[str, list] = {}
    refs = {}
    for key, what in (("probe_accuracy", "linear probe"), ("finetune_accuracy", "fine-tuned")):
        pts = [(r.metrics["k"], r.metrics[key]) for r, _ in runs if "k" in r.metrics and key in r.metrics]
        if pts:
            points[f"k-sparse, {what}"] = pts
        if key == "probe_accuracy":
            refs.update({f"{r.name}, {what}": r.metrics[key] for r, _ in runs
                         if "k" not in r.metrics and key in r.metrics})
    raw = _raw_pixels(ctx)
    if "probe_accuracy" in raw:
        refs["raw pixels, linear probe"] = raw["probe_accuracy"]
    if points:
        ctx.save_figure("accuracy_vs_k", plot(points, refs, f"{ctx.study.name}: accuracy against k"),
                        "Test accuracy of the k-sparse codes against k (code units kept per sample "
                        "in training); dotted lines: the other runs and raw pixels.")


def _check_novelty(params, runs, data, where) -> None:
    """For built-in datasets the classes are known at load: the scored set must hold the
    training classes, and some classes must be left out of training to be novel."""
    from .data import DATASETS, _class_indices, check_dataset_name

    if params["dataset"] is not None:
        check_dataset_name(params["dataset"], f"{where}.dataset")
    trained, scored = (DATASETS.get(n.strip().lower()) if n.strip().lower() in DATASETS else None
                       for n in (data.dataset, params["dataset"] or data.dataset))
    if trained is None or scored is None:
        return  # a file or folder: its classes are known when it is read
    names = trained.meta["classes"]
    if data.classes is not None:
        names = [names[i] for i in sorted(_class_indices(data.classes, names, trained.name, ConfigError))]
    lower = [c.lower() for c in scored.meta["classes"]]
    missing = [c for c in names if c.lower() not in lower]
    if missing:
        raise ConfigError(f"{where} (novelty) scores {scored.name}, whose classes do not include the "
                          f"training classes {', '.join(missing[:5])}; score a dataset with the same classes.")
    if len(names) == len(lower):
        raise ConfigError(f"{where} (novelty) needs classes left out of training to score as novel, but "
                          f"the study trains on all {len(names)} classes of {trained.name}; set data.classes.")


@register_step("novelty", check=_check_novelty)
def novelty(ctx, runs: Runs = None,
            dataset: Annotated[str | None, Field(min_length=1, max_length=4096, description=(
                "the dataset to score (default: the study's own, unfiltered)"))] = None,
            part: Annotated[Literal["train", "test", "all"], Field(description=(
                "which part of it to score"))] = "test",
            score: Annotated[Literal["mse", "bce"], Field(description=(
                "reconstruction error per pixel used as the novelty score"))] = "mse"):
    """Score every image of an unfiltered dataset part (default: the test part of the study's
    dataset) by reconstruction error; classes absent from the training data are the novelties.
    Records ``auroc`` (all unseen vs seen) and ``auroc_per_class``, and a histogram per run."""
    import torch

    from .data import load_dataset
    from .evaluate import novelty_auroc, reconstruction_errors
    from .report.plots import score_histogram

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
    for r, model in _evaluated(ctx, runs):
        s = reconstruction_errors(model, full, score)
        res = novelty_auroc(s, full.y, seen, full.class_names)
        r.metrics.update(res, novelty_score=score)
        lines.append(_line(r.name, {"overall": res["auroc"], **res["auroc_per_class"]}))
        fig = score_histogram(s[is_seen], s[~is_seen], f"{r.name}: AUROC {res['auroc']:.4f}",
                              f"reconstruction error ({score} per pixel)")
        ctx.save_figure(f"novelty-{r.name}", fig,
                        f"Reconstruction errors of {r.name} on seen and unseen classes; the more "
                        "they separate, the higher the AUROC.")
    ctx.summary.extend(lines)


@register_step("observations")
def observations(ctx, window: Annotated[int | None, Field(ge=1, le=100_000, description=(
        "epochs looked back to judge whether a loss was still falling (default: the early-stopping "
        "patience, else 5)"))] = None,
                 gap: Annotated[float, Field(gt=0, le=10, description=(
                     "validation loss above training loss by more than this fraction counts as a "
                     "generalisation gap"))] = 0.1):
    """Observations in words, each computed from the measured numbers: which batch size reaches
    the lower loss and at what time per epoch; whether a regulariser changed the loss and the
    code (with a ``sparsity`` or ``code_activation`` step before it); when early stopping ended
    each run and whether its loss was still falling; over- or under-fitting from the train and
    validation losses. Put it after the steps whose numbers it should use."""
    from .report.observations import observe

    shape = ctx.data_info.get("image_shape")
    if shape is None and "train" in ctx.splits:
        shape = list(ctx.splits["train"].x.shape[1:])
    stopping = {s.name: s.train.early_stopping for s in getattr(ctx.study, "runs", [])}
    ctx.summary.extend(observe(ctx.records, stopping, shape, window, gap))
