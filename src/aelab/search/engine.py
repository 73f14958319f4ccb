"""A search run by the study engine: its trials are tasks that any executor takes as workers free up.

:class:`SearchFeed` is the executor's task source (``executors.Feed``) and a listener: it asks
Optuna for a trial only when a worker is free, answers each trial's question after every epoch
(prune or go on) in this process, which alone owns the journal, and tells Optuna how each trial
ended once the run folder holds its record. So the folder, ``--resume``, ``--jobs``, Ray, the
trackers and the user's listeners work for a search as for any study. Then the best
configuration is trained again over ``confirm_seeds``.
"""

from __future__ import annotations

from ..executors import Task
from ..executors._base import Feed
from ..listeners import Listener
from ._driver import Search, load_search


class SearchFeed(Feed, Listener):
    def __init__(self, search: Search, folder, finished: dict):
        super().__init__()
        self.search, self.folder = search, folder
        plan = search.plan
        self.prunes = plan.config.pruner != "none" and plan.epoch_metric
        search.settle(finished)  # trials whose record was kept, but not told, before a crash

    def take(self, n: int) -> list[Task]:
        return [Task((spec,), (self.folder.read_state(spec.name),), prune=self.prunes)
                for spec in self.search.ask(n)]

    def decide(self, name: str, record: dict) -> str | None:
        return self.search.report(name, record)

    def on_run_end(self, name, record, checkpoint):
        if self.search.running(name):  # not a confirmation run
            self.search.tell(record)


def run_order(plan, name: str) -> tuple:
    """Where run ``name`` goes in metrics.json: the trials by number, then the confirmation runs."""
    if name.startswith("trial-"):
        return (0, int(name.rsplit("-", 1)[1]))
    seeds = [f"confirm-seed{s}" for s in plan.config.confirm_seeds]
    return (1, seeds.index(name) if name in seeds else len(seeds), name)


def run_search(plan, folder, finished: dict, executor, splits, listeners) -> str | None:
    """The trials, then the confirmation runs; why there is no best configuration, or None."""
    search = Search(plan, folder.path)
    feed = SearchFeed(search, folder, finished)
    listeners.append(feed)
    executor.run(feed, splits, listeners)
    best = search.best()
    if best is None:
        counts = ", ".join(f"{n} {state}" for state, n in search.counts().items())
        return f"no trial of the search completed ({counts}), so it has no best configuration"
    todo = [s for s in search.confirm_runs() if s.name not in finished]
    executor.run([Task((s,), (folder.read_state(s.name),)) for s in todo], splits, listeners)
    return None


def summary(plan, folder, records: list) -> dict:
    """metrics.json's ``search``: the trials' table, the best trial and the confirmation runs in
    words, and the search's figures (saved into the folder) with their captions."""
    from .report import best_lines, confirmation, confirmation_line, figures, trial_rows

    study = load_search(folder.path)
    metric = plan.config.metric
    group = confirmation(records)
    saved = []
    for name, fig, caption in figures(study, metric):
        folder.save_figure(name, fig)
        saved.append({"name": name, "caption": caption})
    lines = best_lines(study, metric) + [line for line in [confirmation_line(group, metric)] if line]
    return {"metric": metric, "direction": plan.direction, "lines": lines, "trials": trial_rows(study),
            "figures": saved, "confirmation": group}
