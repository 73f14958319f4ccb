"""Console printouts (rich): the data section and the results table of a study."""

from __future__ import annotations

import contextlib
import math
import re
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # for annotations only: aelab.datasets imports torch
    from ..datasets import DataInfo


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


def print_data(console, info: DataInfo) -> None:
    note = " (fallback: the requested data was not found)" if info.fallback_used else ""
    # Dataset names, paths and class names come from the user's files: never rich markup.
    console.print(f"\n[bold]Data[/bold]: {escape(str(info.dataset))}{note}, {info.n_images:,} "
                  f"images of shape {tuple(info.image_shape)} from {escape(str(info.source))}",
                  highlight=False)
    console.print("Split: " + ", ".join(f"{k} {v:,}" for k, v in info.splits.items()), markup=False)
    if info.preprocessing:  # what a report cites: the pixel scaling and the stratification
        console.print(f"Preprocessing: {info.preprocessing}", markup=False, highlight=False)
    if info.distribution:
        console.print(distribution_table(info.distribution))


def distribution_table(dist: dict) -> Table:
    """dist: subset -> [(class name, count, percent)]; one row per class with count and percent
    per subset, so a reader sees at a glance that the split kept the class proportions."""
    table = Table(title="Class distribution", title_justify="left")
    table.add_column("class")
    for subset in dist:
        table.add_column(subset, justify="right")
    names = [row[0] for row in next(iter(dist.values()), [])]
    for i, name in enumerate(names):
        table.add_row(Text(str(name)), *(f"{rows[i][1]:,} {rows[i][2]:.1f}%" for rows in dist.values()))
    sizes = [sum(r[1] for r in rows) for rows in dist.values()]
    grand = max(sum(sizes), 1)
    table.add_row("total", *(f"{n:,} {100 * n / grand:.1f}%" for n in sizes), style="bold")
    return table


def _fmt(v, spec=".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def results_table(entries: list[dict]) -> FittedTable:
    """One row per trained run, laid out for the console's width (numbers never cut)."""
    cols = ["run", "status", "epochs", "train loss", "val loss", "test loss", "time s", "s/epoch",
            "peak MB"]
    rows = [[e["name"], e.get("status", ""), _fmt(e.get("epochs_run"), "d"),
             _fmt(e.get("train_loss")), _fmt(e.get("val_loss")), _fmt(e.get("test_loss")),
             _fmt(e.get("seconds"), ".1f"), _fmt(e.get("seconds_per_epoch"), ".2f"),
             _fmt(e.get("peak_rss_mb"), ".0f")]
            for e in entries if "history" in e]  # baselines and other non-training entries: no row
    return FittedTable("Results", cols, rows)


# A cell that is a number as formatted for a table ("0.2192", "1,234", "1e-04", "–", "-").
NUMBER = re.compile(r"^[-+]?[\d.,]+(e[-+]?\d+)?%?$|^[–-]$")
TEXT_COLUMNS = ("run", "status", "verdict")


class FittedTable:
    """A table of runs (rows; the first column names the run) that lays itself out for the
    width it is printed at: one row per run when every cell fits, else transposed (one row per
    column, one column per run, run names wrapped) and split over several tables.

    rich squeezes a table that is too wide by cutting cells ("0.…"); a number cut that way
    is a wrong number, so the layout is chosen before rich has to squeeze anything.
    """

    def __init__(self, title: str, headers: list[str], rows: list[list[str]]):
        self.title, self.headers, self.rows = title, list(headers), [list(r) for r in rows]

    def __rich_console__(self, console, options):
        yield from self.tables(options.max_width)

    def tables(self, width: int) -> list[Table]:
        if self._wide_width() <= width:
            return [self._wide()]
        return self._transposed(width)

    def _wide(self) -> Table:
        table = Table(title=self.title, title_justify="left")
        for h in self.headers:
            table.add_column(Text(str(h)), justify="left" if h in TEXT_COLUMNS else "right", no_wrap=True)
        for row in self.rows:
            table.add_row(*(Text(str(c)) for c in row))  # cells are data, not markup
        return table

    def _wide_width(self) -> int:
        """Characters the wide table needs without cutting a cell or a header: each column is
        its widest cell plus one space either side and a border."""
        widths = [max([cell_len(h), *(cell_len(r[i]) for r in self.rows)])
                  for i, h in enumerate(self.headers)]
        return sum(w + 3 for w in widths) + 1

    def _transposed(self, width: int) -> list[Table]:
        """One row per column, one column per run; runs of several folders ("folder/run") get a
        table per folder, titled by it, so that a column is headed by the short run name."""
        keys = self.headers[1:]
        label_w = max((cell_len(k) for k in keys), default=6)
        runs = []
        for row in self.rows:
            folder, _, name = str(row[0]).rpartition("/")
            cells = row[1:]
            numbers = [cell_len(c) for c in cells if NUMBER.match(c)]
            texts = [min(cell_len(c), 16) for c in cells if not NUMBER.match(c)]
            w = max([4, min(cell_len(name), 16), *numbers, *texts])
            runs.append((folder, wrap_name(name, w), cells, w))
        chunks: list[list] = [[]]
        used = label_w + 4  # the label column with its padding and borders
        for run in runs:
            if chunks[-1] and (used + run[3] + 3 > width or run[0] != chunks[-1][-1][0]):
                chunks.append([])
                used = label_w + 4
            chunks[-1].append(run)
            used += run[3] + 3
        tables = []
        for k, chunk in enumerate(chunks):
            title = self.title + (f": {chunk[0][0]}" if chunk[0][0] else "")
            title += f" ({k + 1} of {len(chunks)})" if len(chunks) > 1 else ""
            table = Table(title=title, title_justify="left")
            table.add_column("", no_wrap=True, min_width=label_w)
            for _, name, _, w in chunk:
                table.add_column(Text(str(name)), justify="right", min_width=w, overflow="fold")
            for m, key in enumerate(keys):
                table.add_row(Text(str(key)), *(Text(str(cells[m])) for _, _, cells, _ in chunk))
            tables.append(table)
        return tables


def wrap_name(name: str, width: int) -> str:
    """A run name in lines of at most ``width`` characters, broken after "/", "-", "_" or "."
    where possible ("fashion-shoes-" "20251125/" "stacked-bs32"), else folded."""
    tokens = re.findall(r"[^/\-_.]*[/\-_.]|[^/\-_.]+", name)
    lines = [""]
    for tok in tokens:
        while cell_len(tok) > width:  # a piece longer than a line: fold it
            room = width - cell_len(lines[-1])
            lines[-1] += tok[:room]
            tok = tok[room:]
            lines.append("")
        if cell_len(lines[-1]) + cell_len(tok) > width:
            lines.append("")
        lines[-1] += tok
    return "\n".join(line for line in lines if line)


def mean_ci(stat: dict, spec: str = ".4g") -> str:
    """``0.2192 ± 0.0012 [0.2177, 0.2207]``: mean ± std and the 95% interval of the mean."""
    return (f"{format(stat['mean'], spec)} ± {format(stat['std'], spec)} "
            f"[{format(stat['ci_low'], spec)}, {format(stat['ci_high'], spec)}]")


def aggregates_table(groups: list[dict]) -> FittedTable:
    """Per configuration repeated over seeds: n and mean ± std [95% CI] of the final losses and
    of every number the steps added (see aelab.aggregate)."""
    keys: list[str] = []
    for g in groups:
        keys += [k for k in g["metrics"] if k not in keys]
    rows = [[g["configuration"], str(g["n"]), *(mean_ci(g["metrics"][k], ".4g") if k in g["metrics"] else "-"
                                               for k in keys)]
            for g in groups]
    return FittedTable("Repeats: mean ± std [95% confidence interval]", ["configuration", "n", *keys], rows)


def print_results(console, records, summary: list[str], groups: list[dict] = ()) -> None:
    """The results table of a study's runs (records.RunRecord), the statistics of repeated
    configurations, and the summary lines the steps wrote."""
    console.print()
    console.print(results_table([r.to_json() for r in records]))
    if groups:
        console.print(aggregates_table(groups))
    for line in summary:
        console.print(line, markup=False, highlight=False)
