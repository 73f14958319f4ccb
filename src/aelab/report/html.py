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
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..runs import atomic_write, load_run

# Results columns shown first, in this order, when present; any other scalar key a run carries
# (probe_accuracy, verdict, auroc, ...) follows in order of first appearance.
COLUMNS = {
    "name": "run", "model": "model", "status": "status", "epochs_run": "epochs",
    "stopped_early": "stopped early", "best_epoch": "best epoch", "train_loss": "train loss",
    "val_loss": "val loss", "test_loss": "test loss", "seconds": "time s",
    "seconds_per_epoch": "s/epoch", "peak_rss_mb": "peak MB", "batch_size": "batch",
    "optimizer": "optimizer", "learning_rate": "lr",
}
FORMATS = {"seconds": ".1f", "seconds_per_epoch": ".3f", "peak_rss_mb": ".0f",
           "train_loss": ".4f", "val_loss": ".4f", "test_loss": ".4f"}
# Shown elsewhere (settings column, notes, loss curves) rather than as columns.
NOT_COLUMNS = {"label", "params", "sweep", "history", "reason"}
# Left out of the console comparison to fit a terminal; compare.html and compare.csv have them.
CONSOLE_HIDDEN = {"model", "stopped early", "best epoch", "batch", "optimizer", "lr", "settings", "study"}


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def result_columns(entries: list[dict]) -> list[str]:
    """The keys to tabulate: the known ones present, then every other scalar key."""
    present: list[str] = []
    for e in entries:
        present += [k for k, v in e.items() if k not in present and k not in NOT_COLUMNS and _scalar(v)]
    return [k for k in COLUMNS if k in present] + [k for k in present if k not in COLUMNS]


def format_value(key: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return format(v, FORMATS.get(key, ".4g"))
    return str(v)


def _settings(entry: dict) -> str:
    """The model parameters and swept values that tell runs of one study apart."""
    items = {**entry.get("params", {}), **entry.get("sweep", {})}
    return ", ".join(f"{k}={v}" for k, v in items.items())


def results_rows(entries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of formatted cells) for a results table of all entries."""
    keys = result_columns(entries)
    headers = [COLUMNS.get(k, k) for k in keys] + ["settings"]
    rows = [[format_value(k, e.get(k)) for k in keys] + [_settings(e)] for e in entries]
    return headers, rows


def _results(entries: list[dict]) -> dict:
    keys = result_columns(entries)
    headers, rows = results_rows(entries)
    numeric = [all(isinstance(e.get(k), (int, float)) or e.get(k) is None for e in entries)
               and any(isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool) for e in entries)
               for k in keys] + [False]
    details = []
    for e in entries:
        nested = {k: v for k, v in e.items() if k not in NOT_COLUMNS and not _scalar(v)}
        if nested:
            details.append((e.get("name", "?"), json.dumps(nested, indent=2, default=str)))
    return {
        "columns": headers,
        "rows": [{"failed": e.get("status") == "failed",
                  "cells": [{"text": t, "num": n} for t, n in zip(row, numeric, strict=True)]}
                 for e, row in zip(entries, rows, strict=True)],
        "notes": [(e.get("name", "?"), e["reason"]) for e in entries if e.get("reason")],
        "details": details,
    }


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


def _figures(run_dir: Path, names: list[str]) -> list[dict]:
    """The study's figures in the order it made them, then any other PNG in figures/."""
    folder = run_dir / "figures"
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    ordered = [folder / f"{n}.png" for n in names if (folder / f"{n}.png").is_file()]
    ordered += [p for p in files if p not in ordered]
    return [{"name": p.stem, "data": base64.b64encode(p.read_bytes()).decode("ascii")} for p in ordered]


def _env():
    from jinja2 import Environment, PackageLoader

    return Environment(loader=PackageLoader("aelab", "report"), autoescape=True,
                       trim_blocks=False, keep_trailing_newline=True)


def render_report(run_dir: str | Path, metrics: dict | None = None) -> str:
    """The HTML page of a run folder; ``metrics`` defaults to its metrics.json."""
    run_dir = Path(run_dir)
    if metrics is None:
        metrics = load_run(run_dir)
    data = metrics.get("dataset") or {}
    env = metrics.get("environment") or {}
    settings = run_dir / "study.toml"
    log = run_dir / "console.log"
    context = {
        "title": f"aelab report: {metrics.get('study', run_dir.name)}",
        "study_name": metrics.get("study", ""),
        "description": metrics.get("description", ""),
        "finished": env.get("finished", ""),
        "settings": settings.read_text() if settings.is_file() else "",
        "data": {**data, "splits": list((data.get("splits") or {}).items()),
                 "image_shape": tuple(data.get("image_shape") or ())} if data else None,
        "distribution": _distribution(data.get("distribution") or {}),
        "model_summaries": list((metrics.get("model_summaries") or {}).items()),
        "results": _results(metrics.get("runs") or []),
        "figures": _figures(run_dir, metrics.get("figures") or []),
        "summary": "\n".join(metrics.get("summary") or []),
        "environment": list(env.items()),
        "console_log": log.read_text() if log.is_file() else "",
    }
    return _env().get_template("template.html.j2").render(**context)


def write_report(run_dir: str | Path, metrics: dict | None = None) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    path = Path(run_dir) / "report.html"
    atomic_write(path, render_report(run_dir, metrics))
    return path


# ---------------------------------------------------------------- comparing run folders


@dataclass
class Comparison:
    entries: list[dict]  # every run of every folder, named "<folder>/<run>" when folders differ
    headers: list[str]
    rows: list[list[str]]
    out: Path  # the folder holding compare.html, loss_curves.png and compare.csv


def compare_runs(run_dirs: list[str | Path], out: str | Path | None = None) -> Comparison:
    """Tabulate the runs of several run folders, overlay their loss curves and write them to ``out``.

    ``out`` defaults to ``compare-<timestamp>/`` in the current folder.
    """
    from .plots import loss_curves

    dirs = [Path(d) for d in run_dirs]
    prefix = len(dirs) > 1
    entries = []
    for d in dirs:
        metrics = load_run(d)
        for e in metrics.get("runs") or []:
            e = {**e, "study": metrics.get("study", "")}
            if prefix:
                e["name"] = f"{d.name}/{e.get('name', '?')}"
            entries.append(e)
    out = Path(out) if out is not None else Path(f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    headers, rows = results_rows(entries)

    fig = loss_curves(entries, title="Learning curves: " + ", ".join(d.name for d in dirs))
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
        dirs=[d.name for d in dirs], results=_results(entries),
        figure=base64.b64encode(buf.getvalue()).decode("ascii"))
    atomic_write(out / "compare.html", page)
    return Comparison(entries, headers, rows, out)


def comparison_table(comparison: Comparison):
    """A rich Table of a comparison, for the console."""
    from rich.table import Table

    table = Table(title="Comparison", title_justify="left")
    keep = [i for i, h in enumerate(comparison.headers) if h not in CONSOLE_HIDDEN]
    for i in keep:
        h = comparison.headers[i]
        table.add_column(h, justify="left" if h in ("run", "status", "verdict") else "right",
                         no_wrap=h == "run")
    for row in comparison.rows:
        table.add_row(*(row[i] for i in keep))
    return table
