"""Steps that classify with the codes: a linear probe, a fine-tuned classifier, accuracy against k."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from rich.table import Table
from rich.text import Text  # class and run names are text, never markup

from ..evaluate import accuracy_report, encode, finetune, linear_probe
from ._base import Runs, eval_split, evaluated, raw_pixels, register_step, summary_line


@register_step("linear_probe", needs_labels=True, needs_val=True, produces=(
    "probe_accuracy", "probe_C", "probe_val_accuracy", "probe_per_class_accuracy"))
def step_linear_probe(ctx, runs: Runs = None,
                      Cs: Annotated[list[Annotated[float, Field(gt=0, le=1e9)]] | None, Field(
                          min_length=1, max_length=100, description=(
                              "inverse regularisation strengths tried; the best on validation wins "
                              "(default [0.001, 0.01, 0.1])"))] = None,
                      max_iter: Annotated[int, Field(ge=1, le=100_000, description=(
                          "L-BFGS iterations per fit"))] = 100,
                      baseline: Annotated[bool, Field(description="also probe the raw pixels")] = True):
    """Logistic regression on frozen codes (C picked on validation, accuracy on test), and on
    raw pixels as the baseline: ``probe_accuracy``, ``probe_C``, ``probe_per_class_accuracy``."""
    Cs = Cs or [0.001, 0.01, 0.1]
    tr, va, te = ctx.splits["train"], ctx.splits["val"], eval_split(ctx)
    names = te.class_names
    targets = [(r.name, r.metrics, lambda d, m=m: encode(m, d)) for r, m in evaluated(ctx, runs)]
    if baseline:
        targets.insert(0, ("raw-pixels", raw_pixels(ctx), lambda d: d.x.flatten(1)))
    lines = ["Linear probe (logistic regression on frozen features, test accuracy):"]
    for name, entry, features in targets:
        res = linear_probe(*((features(s), s.y) for s in (tr, va, te)), Cs=Cs, max_iter=max_iter)
        rep = accuracy_report(te.y, res["predictions"], names)
        entry.update(probe_accuracy=res["accuracy"], probe_C=res["C"],
                     probe_val_accuracy=res["val_accuracy"],
                     probe_per_class_accuracy=rep["per_class_accuracy"])
        lines.append(summary_line(name, {"accuracy": res["accuracy"], "C": res["C"]}))
    ctx.summary.extend(lines)


@register_step("finetune", needs_labels=True, produces=(
    "finetune_accuracy", "per_class_accuracy", "confusion", "finetune_history", "finetune_network"))
def step_finetune(ctx, runs: Runs = None,
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
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import confusion_matrix

    head = [10] if head is None else head
    train, test = ctx.splits["train"], eval_split(ctx)
    names = test.class_names
    table = Table()  # titled by a line of its own: a title wraps to the width of a narrow table
    table.add_column("class")
    per_class = {}
    lines = [f"Fine-tuned classifier (encoder + head {head} + softmax, {epochs} epochs, test accuracy):"]
    for r, model in evaluated(ctx, runs):
        # The classifier's layer sizes, input to classes: 784-30-10-10 for a 30-unit code, head [10].
        network = "-".join(map(str, [train.x[0].numel(), encode(model, train.x[:1]).shape[1], *head,
                                     len(names)]))
        ctx.console.print(f"\nFine-tuning {r.name}: the {network} network (encoder + head {head} + "
                          f"softmax over {len(names)} classes)", markup=False, highlight=False)
        res = finetune(model, train, test, len(names), head, epochs, batch_size, learning_rate,
                       seed=r.seed, log=lambda line: ctx.console.print(line, markup=False, highlight=False))
        rep = accuracy_report(test.y, res["predictions"], names)
        r.metrics.update(finetune_accuracy=res["accuracy"], per_class_accuracy=rep["per_class_accuracy"],
                         confusion=rep["confusion"], finetune_history=res["history"],
                         finetune_network=network)
        per_class[r.name] = rep["per_class_accuracy"]
        lines.append(summary_line(r.name, {"network": network, "accuracy": res["accuracy"]}))
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


@register_step("accuracy_vs_k", requires=("probe_accuracy", "finetune_accuracy"))
def step_accuracy_vs_k(ctx):
    """Probe and fine-tune accuracy of the k-sparse runs against their k (the swept setting);
    other runs and the raw-pixel probe as horizontal reference lines."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import accuracy_vs_k

    runs = evaluated(ctx, None)
    points: dict[str, list] = {}
    refs = {}
    for key, what in (("probe_accuracy", "linear probe"), ("finetune_accuracy", "fine-tuned")):
        pts = [(r.metrics["k"], r.metrics[key]) for r, _ in runs if "k" in r.metrics and key in r.metrics]
        if pts:
            points[f"k-sparse, {what}"] = pts
        if key == "probe_accuracy":
            refs.update({f"{r.name}, {what}": r.metrics[key] for r, _ in runs
                         if "k" not in r.metrics and key in r.metrics})
    raw = raw_pixels(ctx)
    if "probe_accuracy" in raw:
        refs["raw pixels, linear probe"] = raw["probe_accuracy"]
    if points:
        ctx.save_figure("accuracy_vs_k", accuracy_vs_k(points, refs, f"{ctx.study.name}: accuracy against k"),
                        "Test accuracy of the k-sparse codes against k (code units kept per sample "
                        "in training); dotted lines: the other runs and raw pixels.")
