"""The study's journal: the listener that keeps the runs' records and writes them into the
run folder as they arrive, so the folder always holds every finished run.

After every epoch the running run's resume state; when a run ends its checkpoint, then the
study's metrics.json, history.csv and console.log so far, then its resume state goes.
"""

from __future__ import annotations

from pathlib import Path

from ..listeners import Listener
from ..report.progress import run_block


class Journal(Listener):
    def __init__(self, folder, study, info, data_dir, header: str, summaries: dict, finished: dict):
        self.folder, self.study, self.info, self.data_dir = folder, study, info, data_dir
        self.header, self.summaries = header, summaries  # printed before training; console.log starts with it
        self.records = dict(finished)  # run name -> records.RunRecord, kept from before a resume too

    def on_state(self, name, state):
        self.folder.write_state(name, state)

    def on_run_end(self, name, record, checkpoint):
        if checkpoint is not None:
            self.folder.write_checkpoint(name, checkpoint)
        self.records[name] = record
        self.write()
        self.folder.drop_state(name)

    def ordered(self) -> list:
        """The records so far, in study order (a search's: trials by number, then confirmations)."""
        if self.study.search is not None:
            from ..search.engine import run_order

            return sorted(self.records.values(), key=lambda r: run_order(self.study.search, r.name))
        return [self.records[s.name] for s in self.study.runs if s.name in self.records]

    def metrics(self, complete: bool, extra: dict | None = None) -> dict:
        study = self.study
        return {"study": study.name, "description": study.description, "dataset": self.info.to_json(),
                "data_dir": str(Path(self.data_dir).resolve()) if self.data_dir else None,
                "seed": study.seed, "quick": study.quick, "complete": complete,
                "runs": [r.to_json() for r in self.ordered()], **(extra or {})}

    def log(self, footer: str = "") -> str:
        """console.log: the header, every finished run's epochs and end, then ``footer``."""
        blocks = "\n".join(run_block(r) for r in self.ordered())
        return self.header + ("\n" + blocks + "\n" if blocks else "") + footer

    def write(self) -> None:
        """The folder's state so far: what a reader (or ``aelab report``) sees mid-study."""
        self.folder.write_results(self.metrics(complete=False, extra={"model_summaries": self.summaries}),
                                  self.log())
