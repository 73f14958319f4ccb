"""Training as it happens: progress bars on a terminal, one plain line per epoch elsewhere.

Redirected to a file or a pipe (a cluster job, ``| tee``), aelab prints one line per epoch as
Keras does with ``verbose=2``; on a terminal, a bar per active run that shows the epochs a run
actually ran when it stops early. Nothing here is parsed as rich markup.
"""

from __future__ import annotations

import math

from ..listeners import Listener


def _num(v) -> str:
    return "nan" if v is None else (f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else str(v))


def epoch_line(name: str, record: dict, epochs_max: int) -> str:
    """``stacked-bs32  epoch  3/50  loss 0.2401  val_loss 0.2398  1.2 s``."""
    width = len(str(epochs_max))
    losses = "  ".join(f"{k.removeprefix('train_')} {_num(record[k])}"
                       for k in ("train_loss", "val_loss") if k in record)
    return f"{name}  epoch {record['epoch']:>{width}}/{epochs_max}  {losses}  {record.get('seconds', 0):.1f} s"


def final_line(record) -> str:
    """One sentence on how a run ended (a records.RunRecord)."""
    def num(v):
        return "-" if v is None else f"{v:.4f}"

    how = {"completed": f"completed {record.epochs_run} epochs",
           "stopped_early": f"stopped early after {record.epochs_run} of {record.epochs_max} epochs "
                            f"(best epoch {record.best_epoch})",
           "diverged": f"diverged at epoch {record.epochs_run}",
           "failed": "failed"}.get(record.status, record.status)
    if record.status == "failed":
        return f"{record.name}: failed: {record.reason}"
    return (f"{record.name}: {how}: train {num(record.train_loss)}, val {num(record.val_loss)}, "
            f"test {num(record.test_loss)}; {record.seconds:.1f} s")


def run_block(record) -> str:
    """A run's lines in console.log: every epoch, then how it ended; the same whether the run
    was interrupted and resumed or ran in another process."""
    lines = [epoch_line(record.name, e, record.epochs_max) for e in record.history]
    return "\n".join([*lines, final_line(record)])


class RunDisplay(Listener):
    """Shows runs as their events arrive; several runs may be active at once (``--jobs``)."""

    def __init__(self, console, n_runs: int, title: str, quiet: bool = False):
        self.console, self.quiet = console, quiet
        self.bars = console.is_terminal and not quiet
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.epochs: dict[str, int] = {}  # run name -> its epochs at most, from on_run_start
        self.n_runs, self.title = n_runs, title

    def __enter__(self):
        if self.bars:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.table import Column

            # The bar, the count and the time keep their width whatever the terminal's: only the
            # info column gives way (cut with an ellipsis), so a long line never hides a bar.
            self.progress = Progress(
                TextColumn("{task.description}", markup=False, table_column=Column(no_wrap=True)),
                BarColumn(bar_width=30), MofNCompleteColumn(table_column=Column(no_wrap=True)),
                TextColumn("{task.fields[unit]}", table_column=Column(no_wrap=True)),
                TimeElapsedColumn(table_column=Column(no_wrap=True)),
                TextColumn("{task.fields[info]}", markup=False,
                           table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                console=self.console, transient=False, expand=True)
            self.progress.__enter__()
            self.study = self.progress.add_task(self.title, total=self.n_runs, info="", unit="runs")
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def _print(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def on_run_start(self, name: str, epochs_max: int, done: int = 0) -> None:
        self.epochs[name] = epochs_max
        if self.progress is not None:
            self.tasks[name] = self.progress.add_task(name, total=epochs_max, completed=done,
                                                      info="resumed" if done else "", unit="epochs")
        elif done:
            self._print(f"{name}  resumed after epoch {done}")

    def on_epoch(self, name: str, record: dict) -> None:
        if self.progress is not None and name in self.tasks:
            info = f"loss {_num(record.get('train_loss'))}"
            if "val_loss" in record:
                info += f"  val {_num(record['val_loss'])}"
            self.progress.update(self.tasks[name], completed=record["epoch"], info=info)
        else:
            self._print(epoch_line(name, record, self.epochs[name]))

    def on_run_end(self, name: str, record, checkpoint=None) -> None:
        self.end(record)

    def end(self, record, kept: bool = False) -> None:
        """A run finished (``kept``: it finished in an earlier, interrupted session): its final
        line goes above the bars, its bar keeps a short verdict."""
        line = ("(kept) " if kept else "") + final_line(record)
        if self.progress is None:
            self._print(line)
            return
        task = self.tasks.pop(record.name, None)
        if task is None:
            task = self.progress.add_task(record.name, total=max(record.epochs_max, 1), unit="epochs", info="")
        # The bar shows the epochs actually run: a run stopped early at 14 reads 14/14.
        self.progress.update(task, total=max(record.epochs_run, 1), completed=record.epochs_run,
                             info=_verdict(record))
        self.progress.update(self.study, advance=1)
        self.progress.console.print(line, markup=False, highlight=False)


def _verdict(record) -> str:
    """A finished run's bar text: how it ended and its validation loss, short enough to leave
    the other runs' bars their room."""
    if record.status == "failed":
        return "failed (see above)"
    how = {"stopped_early": f"stopped early (best {record.best_epoch})"}.get(record.status,
                                                                              record.status)
    return f"{how}  val {_num(record.val_loss)}"
