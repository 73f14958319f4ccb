"""The live display: every active run keeps its bar and epoch count in a 120-column terminal."""

from __future__ import annotations

import io

from rich.console import Console

from aelab.records import RunRecord
from aelab.report.progress import RunDisplay


def _screen(display: RunDisplay, width: int) -> list[str]:
    """The display's rows as a terminal ``width`` columns wide shows them."""
    out = Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None)
    out.print(display.progress.make_tasks_table(display.progress.tasks))
    return out.file.getvalue().splitlines()


def _ended(name: str) -> RunRecord:
    return RunRecord(name=name, model="stacked", label="stacked_ae", params={}, sweep={}, seed=0,
                     batch_size=32, optimizer="nadam", learning_rate=1e-4, status="stopped_early",
                     epochs_run=14, epochs_max=50,
                     best_epoch=9, train_loss=0.2712, val_loss=0.2698, test_loss=0.2701, seconds=812.4)


def test_a_finished_run_leaves_every_bar_and_count_of_the_others_in_120_columns():
    """Issue 21: once the first run ended, its long final line took the row's width and the
    running run showed "sparse_ae-bs256  epochs  loss 0.6912  val 0.6889", no bar, no count."""
    console = Console(width=120, file=io.StringIO(), force_terminal=True, color_system=None)
    names = ["stacked_ae-bs32", "stacked_ae-bs256", "sparse_ae-bs32", "sparse_ae-bs256"]
    with RunDisplay(console, len(names), "fashion-shoes") as display:
        for name in names:
            display.on_run_start(name, 50)
        display.on_epoch(names[0], {"epoch": 14, "train_loss": 0.2712, "val_loss": 0.2698})
        display.end(_ended(names[0]))
        for name in names[1:]:
            display.on_epoch(name, {"epoch": 7, "train_loss": 0.6912, "val_loss": 0.6889})
        rows = _screen(display, 120)
    assert len(rows) == 5 and all(len(r) <= 120 for r in rows)
    for name in names[1:]:
        row = next(r for r in rows if r.startswith(name))
        assert "7/50" in row and "━" in row and "val 0.6889" in row, row
    first = next(r for r in rows if r.startswith(names[0]))
    assert "14/14" in first and "stopped early" in first, first
    assert "0/4" in rows[0] or "1/4" in rows[0]
    assert "stacked_ae-bs32: stopped early after 14 of 50 epochs" in console.file.getvalue()
