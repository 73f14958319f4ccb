"""One self-contained HTML report per run folder, and comparisons of several run folders.

The page embeds its figures as base64 PNG and its style inline, so it opens offline, can be
mailed as one file, and shows the same thing in ten years. Everything comes from the run
folder (metrics.json, study.toml, figures/, console.log), so ``aelab report`` rebuilds it
without retraining. Text from study files is escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AelabError, FolderError
from ..runs.folder import (
    FIGURES,
    LOG,
    MAX_FIGURE,
    MAX_TEXT,
    REPORT,
    STUDY,
    atomic_write,
    figure_paths,
    read_inside,
    read_metrics,
)
from .summary import summary_blocks
from .tables import CONSOLE_HIDDEN, format_value, result_columns, results_rows, results_tables


def _distribution(dist: dict) -> dict | None:
    """dist: subset -> [(class, count, percent)] as written by run_study."""
    if not dist:
        return None
    subsets = list(dist)
    first = dist[subsets[0]]
    return {
        "subsets": subsets,
        "rows": [{"name": row[0], "cells": [f"{dist[s][i][1]:,} ({dist[s][i][2]:.1f}%)" for s in subsets]}
                 for i, row in enumerate(first)],
        "totals": [f"{sum(r[1] for r in dist[s]):,}" for s in subsets],
    }


# Figure name (or its kind, before "-<run>") -> what it shows, as a sentence; {run} is the run.
CAPTIONS = {
    "loss_curves": "Training (dashed) and validation (solid) loss per epoch, one panel per model; "
                   "a dot marks the best epoch and a cross where early stopping ended a run.",
    "reconstructions": "Test images (top) and their reconstructions by {run} (bottom); pixel "
                       "values shown clipped to [0, 1].",
    "denoising": "Noisy test inputs (top), {run}'s denoised outputs (middle) and the clean "
                 "targets (bottom).",
    "codes": "Test images (top) and their codes in {run} (bottom), each channel drawn as an image.",
    "latent": "The test images' latent means in {run}, one colour per class.",
    "manifold": "Images decoded by {run} from a grid of latent points at Gaussian quantiles "
                "0.05 to 0.95.",
    "confusion": "Confusion matrix of {run}'s classifier on the test set (rows: true class, "
                 "columns: predicted class).",
    "filters": "The decoder weights of {run} drawn as images: the features it learned.",
    "accuracy_vs_k": "Test accuracy against k, the number of code units kept per sample in "
                     "training; dotted lines are the baselines.",
    "novelty": "Reconstruction errors by {run} of test images from the training classes and "
               "from unseen classes.",
}


def caption(name: str, captions: dict | None = None) -> str:
    """What a figure shows: the study's own caption (metrics["captions"]) when it wrote one,
    else a sentence derived from the figure's name ("reconstructions-stacked-bs256" -> "Test
    images (top) and their reconstructions by stacked-bs256 (bottom).")."""
    if captions and captions.get(name):
        return str(captions[name])
    if name in CAPTIONS:
        return CAPTIONS[name]
    kind, _, run = name.partition("-")
    if run and kind in CAPTIONS:
        return CAPTIONS[kind].format(run=run)
    return f"Figure {name}, made by the study's steps."


def _figures(run_dir: Path, names: list[str], captions: dict | None = None) -> list[dict]:
    """The study's figures in the order it made them, then any other PNG in figures/."""
    return [{"name": p.stem, "caption": caption(p.stem, captions),
             "data": base64.b64encode(read_inside(run_dir, FIGURES, p.name, limit=MAX_FIGURE)).decode("ascii")}
            for p in figure_paths(run_dir, names)]


def _text(run_dir: Path, name: str) -> str:
    """A text file of the run folder (read_inside: a regular file inside it), or "" if absent."""
    if not os.path.lexists(run_dir / name):
        return ""
    return read_inside(run_dir, name, limit=MAX_TEXT).decode("utf-8", errors="replace")


def _env():
    from jinja2 import Environment, PackageLoader

    return Environment(loader=PackageLoader("aelab", "report"), autoescape=True,
                       trim_blocks=False, keep_trailing_newline=True)


def _aggregates(groups: list[dict]) -> dict | None:
    """Configurations repeated over seeds: n and mean ± std [95% CI] per final number."""
    if not groups:
        return None
    from .console import aggregates_table

    table = aggregates_table(groups)
    return {"columns": table.headers, "rows": table.rows}


def _search(run_dir: Path, search) -> dict | None:
    """A search's section (metrics["search"], see aelab.search.engine.summary): the best trial
    in words, the table of trials, its figures and the confirmation runs' statistics. The folder
    is not trusted: entries of the wrong type are left out, figures read as every figure is."""
    if not isinstance(search, dict) or not search:
        return None
    trials = [t for t in search.get("trials") or [] if isinstance(t, dict) and isinstance(t.get("params", {}), dict)]
    names = list(dict.fromkeys(str(k) for t in trials for k in t.get("params", {})))
    rows = [[str(t.get("run", "?")), str(t.get("state", "?")), format_value("value", t.get("value")),
             format_value("epochs", t.get("epochs")), format_value("seconds", t.get("seconds"))]
            + [format_value(n, t.get("params", {}).get(n)) for n in names] for t in trials]
    listed = [f for f in search.get("figures") or [] if isinstance(f, dict) and isinstance(f.get("name"), str)]
    captions = {f["name"]: str(f.get("caption", "")) for f in listed}
    figures = [f for f in _figures(run_dir, list(captions), captions) if f["name"] in captions]
    confirmation = search.get("confirmation")
    return {"lines": [str(x) for x in search.get("lines") or []], "metric": str(search.get("metric", "")),
            "figures": figures, "columns": ["trial", "state", str(search.get("metric", "value")), "epochs",
                                            "seconds", *names],
            "rows": rows, "confirmation": _aggregates([confirmation] if isinstance(confirmation, dict) else [])}


def render_report(run_dir: str | Path, metrics: dict | None = None) -> str:
    """The HTML page of a run folder; ``metrics`` defaults to its metrics.json."""
    from ..aggregate import aggregates

    run_dir = Path(run_dir)
    if metrics is None:
        metrics = read_metrics(run_dir)
    search = metrics.get("search") if isinstance(metrics.get("search"), dict) else {}
    search_figures = {f.get("name") for f in search.get("figures") or [] if isinstance(f, dict)}
    data = metrics.get("dataset") or {}
    env = metrics.get("environment") or {}
    context = {
        "title": f"aelab report: {metrics.get('study', run_dir.name)}",
        "study_name": metrics.get("study", ""),
        "description": metrics.get("description", ""),
        "finished": env.get("finished", ""),
        "settings": _text(run_dir, STUDY),
        "data": {**data, "splits": list((data.get("splits") or {}).items()),
                 "image_shape": tuple(data.get("image_shape") or ())} if data else None,
        "distribution": _distribution(data.get("distribution") or {}),
        "model_summaries": list((metrics.get("model_summaries") or {}).items()),
        "results": results_tables(metrics.get("runs") or []),
        "aggregates": _aggregates(aggregates(metrics.get("runs") or [])),  # from the checked records
        "figures": [f for f in _figures(run_dir, metrics.get("figures") or [], metrics.get("captions"))
                    if f["name"] not in search_figures],
        "search": _search(run_dir, metrics.get("search")),
        "quick": bool(metrics.get("quick")),
        "summary": summary_blocks(metrics.get("summary") or []),
        "environment": list(env.items()),
        "console_log": _text(run_dir, LOG),
    }
    return _env().get_template("template.html.j2").render(**context)


def write_report(run_dir: str | Path, metrics: dict | None = None) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    path = Path(run_dir) / REPORT
    page = render_report(run_dir, metrics)
    try:
        atomic_write(path, page)
    except OSError as err:
        raise FolderError(f"Cannot write {path} ({err.strerror or err}); make the folder writable.") from None
    return path


# ---------------------------------------------------------------- comparing run folders


@dataclass
class Comparison:
    entries: list[dict]  # every run of every folder, named "<folder>/<run>" when folders differ
    headers: list[str]
    rows: list[list[str]]
    out: Path | None  # the folder holding compare.html, loss_curves.png and compare.csv, if any
    aggregates: list = field(default_factory=list)  # configurations repeated over seeds
    differences: list = field(default_factory=list)  # of two such configurations' means


def compare_runs(run_dirs: list[str | Path], out: str | Path | None = None) -> Comparison:
    """Tabulate the runs of several run folders; with ``out``, also write compare.html, the
    overlaid loss curves and compare.csv there. Without it nothing is written: comparing is
    reading, and a folder appearing wherever one happens to stand (a git checkout) is litter."""
    dirs = [Path(d) for d in run_dirs]
    prefix = len(dirs) > 1
    entries = []
    for d in dirs:
        metrics = read_metrics(d)
        for e in metrics.get("runs") or []:
            e = {**e, "study": metrics.get("study", "")}
            if prefix:  # one loss-curve panel per folder and model, not one per model name
                e["name"] = f"{d.name}/{e.get('name', '?')}"
                e["label"] = f"{d.name}/{e.get('label') or e.get('model') or '?'}"
            entries.append(e)
    headers, rows = results_rows(entries)
    from ..aggregate import aggregates, differences

    groups = aggregates(entries)
    diffs = differences(entries, groups)
    result = Comparison(entries, headers, rows, Path(out) if out is not None else None, groups, diffs)
    if result.out is not None:
        _write_comparison(result, [d.name for d in dirs])
    return result


def _write_comparison(result: Comparison, dirs: list[str]) -> None:
    """compare.html, loss_curves.png and compare.csv in ``result.out`` (made if missing)."""
    from .plots import loss_curves

    out, entries = result.out, result.entries
    if os.path.lexists(out) and not out.is_dir():
        raise AelabError(f"--out {out} is a file, not a folder; pass a folder for the comparison.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AelabError(f"Cannot create {out} ({err.strerror or err}); pass another --out.") from None
    fig = loss_curves(entries, title="Learning curves: " + ", ".join(dirs))
    figure_caption = (caption("loss_curves") if len(dirs) == 1 else
                      "Training (dashed) and validation (solid) loss per epoch, one panel per run "
                      "folder and model; a dot marks the best epoch and a cross where early "
                      "stopping ended a run.")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    atomic_write(out / "loss_curves.png", buf.getvalue())
    keys = result_columns(entries)
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(keys)
    w.writerows([[e.get(k, "") for k in keys] for e in entries])
    atomic_write(out / "compare.csv", text.getvalue())
    page = _env().get_template("compare.html.j2").render(
        dirs=dirs, results=results_tables(entries), caption=figure_caption,
        figure=base64.b64encode(buf.getvalue()).decode("ascii"), aggregates=_aggregates(result.aggregates),
        differences=[difference_line(d) for d in result.differences])
    atomic_write(out / "compare.html", page)


def difference_line(d: dict) -> str:
    """"val_loss: sparse - stacked = +0.0012 [-0.0003, +0.0027] (95% CI)"."""
    ci = ("" if d["ci_low"] != d["ci_low"] else  # NaN: fewer than two runs or no spread
          f" [{d['ci_low']:+.4g}, {d['ci_high']:+.4g}] (95% CI, Welch)")
    return f"{d['metric']}: {d['second']} − {d['first']} = {d['difference']:+.4g}{ci}"


def comparison_tables(comparison: Comparison, width: int) -> list:
    """The console comparison for a terminal ``width`` columns wide: one row per run when that
    fits, else one row per metric with the runs as columns (several tables if needed)."""
    return comparison_table(comparison).tables(width)


def comparison_table(comparison: Comparison):
    """The comparison for ``console.print``: it lays itself out for the console's width and
    never cuts a number (see report.console.FittedTable)."""
    from .console import FittedTable

    keep = [i for i, h in enumerate(comparison.headers) if h not in CONSOLE_HIDDEN]
    return FittedTable("Comparison", [comparison.headers[i] for i in keep],
                       [[row[i] for i in keep] for row in comparison.rows])
