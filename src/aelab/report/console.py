"""Console printouts (rich): the data section and the results table of a study."""

from __future__ import annotations

import contextlib
import math

from rich.table import Table


@contextlib.contextmanager
def status(console, text: str):
    """A spinner with ``text`` while a long step runs (data loading, probes, clustering).

    Silent for quiet or non-terminal consoles, so logs and console.log get no spinner frames.
    """
    if console is None or console.quiet or not console.is_terminal:
        yield
        return
    with console.status(text):
        yield


def print_data(console, info: dict) -> None:
    note = " (fallback: the requested data was not found)" if info.get("fallback_used") else ""
    console.print(f"\n[bold]Data[/bold]: {info['dataset']}{note}, {info['n_images']:,} images of "
                  f"shape {tuple(info['image_shape'])} from {info['source']}", highlight=False)
    console.print("Split: " + ", ".join(f"{k} {v:,}" for k, v in info["splits"].items()))
    dist = info.get("distribution")
    if dist:
        console.print(distribution_table(dist))


def distribution_table(dist: dict) -> Table:
    """dist: subset -> [(class name, count, percent)]; one row per class with count and percent
    per subset, so a reader sees at a glance that the split kept the class proportions."""
    table = Table(title="Class distribution", title_justify="left")
    table.add_column("class")
    for subset in dist:
        table.add_column(subset, justify="right")
    names = [row[0] for row in next(iter(dist.values()), [])]
    for i, name in enumerate(names):
        table.add_row(name, *(f"{rows[i][1]:,} {rows[i][2]:.1f}%" for rows in dist.values()))
    sizes = [sum(r[1] for r in rows) for rows in dist.values()]
    grand = max(sum(sizes), 1)
    table.add_row("total", *(f"{n:,} {100 * n / grand:.1f}%" for n in sizes), style="bold")
    return table


def _fmt(v, spec=".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def results_table(entries: list[dict]) -> Table:
    table = Table(title="Results", title_justify="left")
    for col in ("run", "status", "epochs", "train loss", "val loss", "test loss", "time s",
                "s/epoch", "peak MB"):
        table.add_column(col, justify="left" if col in ("run", "status") else "right")
    for e in entries:
        if "history" not in e:  # baselines and other non-training entries
            continue
        table.add_row(e["name"], e.get("status", ""), _fmt(e.get("epochs_run"), "d"),
                      _fmt(e.get("train_loss")), _fmt(e.get("val_loss")), _fmt(e.get("test_loss")),
                      _fmt(e.get("seconds"), ".1f"), _fmt(e.get("seconds_per_epoch"), ".2f"),
                      _fmt(e.get("peak_rss_mb"), ".0f"))
    return table


def print_results(console, ctx) -> None:
    console.print()
    console.print(results_table([r.metrics for r in ctx.runs]))
    for line in ctx.summary:
        console.print(line, markup=False, highlight=False)
