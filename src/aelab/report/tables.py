"""The results of a study's runs as tables: columns, cell formats, and the page's layout of them.

A run record carries some twenty scalars; one row of all of them is wider than a laptop screen.
The page therefore states once what every run shares ("optimizer nadam, hidden=[256, 50]"),
keeps the training numbers and what tells the runs apart in one table, and puts the numbers
the steps added (probe accuracy, AUROC, ...) in tables of their own.
"""

from __future__ import annotations

import json
import math

# Results columns shown first, in this order, when present; any other scalar key a run carries
# (probe_accuracy, verdict, auroc, ...) follows in order of first appearance.
COLUMNS = {
    "name": "run", "model": "model", "status": "status", "epochs_run": "epochs",
    "stopped_early": "stopped early", "best_epoch": "best epoch", "train_loss": "train loss",
    "val_loss": "val loss", "test_loss": "test loss", "seconds": "time s",
    "seconds_per_epoch": "s/epoch", "peak_rss_mb": "peak MB", "batch_size": "batch",
    "optimizer": "optimizer", "learning_rate": "lr", "epochs_max": "max epochs", "loss_name": "loss",
}
FORMATS = {"seconds": ".1f", "seconds_per_epoch": ".3f", "peak_rss_mb": ".0f",
           "train_loss": ".4f", "val_loss": ".4f", "test_loss": ".4f"}
# Shown elsewhere (settings column, notes, loss curves) rather than as columns.
NOT_COLUMNS = {"label", "params", "sweep", "history", "reason"}
# Left out of the console comparison to fit a terminal; compare.html and compare.csv have them.
CONSOLE_HIDDEN = {"model", "stopped early", "best epoch", "batch", "optimizer", "lr", "settings", "study",
                  "max epochs", "loss"}
# On the page: the status says whether a run stopped early, so that column would repeat it.
PAGE_HIDDEN = {"stopped_early"}
# How a run was set up, rather than what it measured: stated once above the table when all runs agree.
SETUP = ("model", "seed", "batch_size", "optimizer", "learning_rate", "epochs_max", "loss_name")
EXTRA_PER_TABLE = 6  # step metrics per table beside the run name: fits 1,280 px with long names


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


def _settings(entry: dict, skip=()) -> str:
    """The model parameters and swept values that tell runs of one study apart."""
    items = {**entry.get("params", {}), **entry.get("sweep", {})}
    return ", ".join(f"{k}={v}" for k, v in items.items() if k not in skip)


def results_rows(entries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of formatted cells) for a results table of all entries (console, CSV)."""
    keys = result_columns(entries)
    headers = [COLUMNS.get(k, k) for k in keys] + ["settings"]
    rows = [[format_value(k, e.get(k)) for k in keys] + [_settings(e)] for e in entries]
    return headers, rows


def _shared(runs: list[dict], values) -> dict:
    """key -> value for the keys that every run has, with the same value (with two runs or more:
    one run shares nothing)."""
    if len(runs) < 2:
        return {}
    seen: dict = {}
    for e in runs:
        for k, v in values(e).items():
            if v is not None:
                seen.setdefault(k, []).append(json.dumps(v, sort_keys=True, default=str))
    return {k: json.loads(vs[0]) for k, vs in seen.items() if len(vs) == len(runs) and len(set(vs)) == 1}


def _cells(entries: list[dict], keys: list[str], settings: list[str] | None = None) -> dict:
    """A table of ``keys`` per entry: numbers right-aligned and never wrapped, run names and
    settings wrapped anywhere (long, without spaces), other text at spaces only."""
    kinds = ["name" if k == "name" else
             "num" if all(isinstance(e.get(k), (int, float)) or e.get(k) is None for e in entries)
             and any(isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool) for e in entries)
             else "text" for k in keys]
    columns = [COLUMNS.get(k, k) for k in keys]
    if settings is not None:
        columns.insert(1, "settings")
        kinds.insert(1, "wrap")
    rows = []
    for i, e in enumerate(entries):
        texts = [format_value(k, e.get(k)) for k in keys]
        if settings is not None:
            texts.insert(1, settings[i])
        rows.append({"failed": e.get("status") == "failed",
                     "cells": [{"text": t, "kind": kind} for t, kind in zip(texts, kinds, strict=True)]})
    return {"columns": columns, "rows": rows}


def results_tables(entries: list[dict]) -> dict:
    """The page's results: ``common`` (what every run shares, as "key value" phrases), the main
    table (run, settings that differ, training numbers), ``extra`` tables of the step metrics,
    failure notes and nested details."""
    keys = [k for k in result_columns(entries) if k not in PAGE_HIDDEN]
    runs = [e for e in entries if "params" in e or "sweep" in e]  # not baselines such as raw pixels
    shared = _shared(runs, lambda e: {k: e.get(k) for k in SETUP if k in keys})
    settings = _shared(runs, lambda e: {**e.get("params", {}), **e.get("sweep", {})})
    setup = [k for k in SETUP if k in keys and k not in shared]  # what tells the runs apart, first
    main = ["name", *setup] + [k for k in keys if k in COLUMNS and k not in SETUP and k != "name"]
    shown = [_settings(e, skip=set(settings) | set(COLUMNS)) for e in entries]
    table = _cells(entries, main, shown if any(shown) else None)
    extra = [k for k in keys if k not in COLUMNS and k not in SETUP]
    details = [(e.get("name", "?"), json.dumps(nested, indent=2, default=str)) for e in entries
               if (nested := {k: v for k, v in e.items() if k not in NOT_COLUMNS and not _scalar(v)})]
    return {
        **table,
        "common": [f"{COLUMNS.get(k, k)} {format_value(k, v)}" for k, v in shared.items()]
                  + [f"{k}={v}" for k, v in settings.items()],
        "extra": [_cells(entries, ["name", *extra[i:i + EXTRA_PER_TABLE]])
                  for i in range(0, len(extra), EXTRA_PER_TABLE)],
        "notes": [(e.get("name", "?"), e["reason"]) for e in entries if e.get("reason")],
        "details": details,
    }
