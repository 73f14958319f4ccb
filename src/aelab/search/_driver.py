"""The search driver: Optuna's ask/tell over the trials of a study, stored in its run folder.

One :class:`Search` in the process that owns the run folder asks Optuna for configurations
(:meth:`Search.ask` -> plan.RunSpec ``trial-007``), decides after each epoch whether a trial is
pruned (:meth:`Search.report`, through :meth:`Search.prune_callback` when the run trains in this
process) and tells Optuna how each run ended (:meth:`Search.tell`). The trials live in an Optuna
journal file in the run folder, so a search reopened on the same folder continues: finished
trials stay, trials that were running when the process died are asked again first (their params
are stored; their runs resume from their saved epoch), and new trials follow.

Samplers keep a random state that Optuna does not store, so a sampler reopened after a crash
would not continue where it stopped. Here the sampler is made afresh for every trial, seeded by
the study's seed and the trial's number: what trial n samples depends only on the trials stored
before it, so a resumed search samples what an uninterrupted one would have.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..callbacks import Callback
from ..errors import AelabError, ConfigError

JOURNAL = "search.journal"  # Optuna's JournalStorage file, in the run folder
STUDY_NAME = "search"
PRUNER_NAMES = {"asha": "ASHA", "median": "the median pruner"}


def trial_name(number: int) -> str:
    return f"trial-{number:03d}"


def _number(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def make_sampler(plan, number: int):
    """The sampler for trial ``number``, seeded by the study's seed and that number."""
    import numpy as np
    import optuna

    seed = int(np.random.SeedSequence([plan.seed, number]).generate_state(1)[0])
    cfg = plan.config
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "grid":  # its seed also orders the grid points: the same for every trial
        return optuna.samplers.GridSampler({d.name: d.grid() for d in plan.dimensions}, seed=plan.seed)
    from ._schema import TpeSettings

    tpe = cfg.tpe or TpeSettings()
    with warnings.catch_warnings():  # multivariate and constant_liar are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # constant_liar: trials still running count as bad, so concurrent trials spread out.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe.n_startup_trials,
                                          multivariate=tpe.multivariate, constant_liar=True)


def make_pruner(plan):
    import optuna

    from ._schema import AshaSettings, MedianSettings

    cfg = plan.config
    if cfg.pruner == "asha":
        s = cfg.asha or AshaSettings()
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=s.min_resource, reduction_factor=s.reduction_factor,
            min_early_stopping_rate=s.min_early_stopping_rate)
    if cfg.pruner == "median":
        s = cfg.median or MedianSettings()
        # Steps are 1-based epochs and Optuna judges a step >= n_warmup_steps: + 1 leaves exactly
        # n_warmup_steps epochs unjudged.
        return optuna.pruners.MedianPruner(n_startup_trials=s.n_startup_trials, n_warmup_steps=s.n_warmup_steps + 1,
                                           interval_steps=s.interval_steps, n_min_trials=s.n_min_trials)
    return optuna.pruners.NopPruner()


def open_storage(folder: str | Path):
    """The journal storage of the search in ``folder`` (created when absent)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(folder) / JOURNAL
    # The open(O_EXCL) lock works on every file system that the run folder may be on.
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def load_search(folder: str | Path):
    """The stored search (an ``optuna.Study``) of a run folder, read only, for reports."""
    import optuna

    if not (Path(folder) / JOURNAL).is_file():
        raise AelabError(f"{folder} holds no search ({JOURNAL} is missing).")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY_NAME, storage=open_storage(folder))


class PruneCallback(Callback):
    """After every epoch asks ``decide(record)``; a reason it returns ends the run as "pruned".

    In the process that owns the search ``decide`` is :meth:`Search.report`; in a worker it is a
    question to that process (the run waits for the answer, so it stops at the same epoch as a
    run trained in the driver would)."""

    def __init__(self, decide):
        self.decide = decide

    def on_epoch_end(self, state, record):
        reason = self.decide(record)
        if reason:
            state.stop("pruned", reason)


@dataclass
class Best:
    number: int
    name: str  # its run, e.g. "trial-007"
    value: float
    values: dict  # the sampled configuration, by dimension name
    spec: object  # plan.RunSpec of that configuration


class Search:
    """The trials of one search; see the module docstring for the protocol."""

    def __init__(self, plan, folder: str | Path):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # aelab prints its own line per trial
        self.plan = plan
        self.study = optuna.create_study(storage=open_storage(folder), study_name=STUDY_NAME,
                                         direction=plan.direction, pruner=make_pruner(plan),
                                         load_if_exists=True)
        space = {d.name: repr(d.distribution()) for d in plan.dimensions}
        stored = self.study.user_attrs.get("space")
        if stored is None:
            self.study.set_user_attr("space", space)
        elif stored != space:
            raise AelabError(f"The search stored in {folder} samples other ranges than this study; "
                             "resume it with the study.toml it was started with.")
        self._trials: dict = {}  # run name -> optuna.Trial, asked and not yet told
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        self._interrupted = [optuna.trial.Trial(self.study, t._trial_id) for t in running]

    # -------------------------------------------------------------- ask and tell

    def _trials_of(self, *states) -> list:
        return self.study.get_trials(deepcopy=False, states=states or None)

    @property
    def failures(self) -> int:
        from optuna.trial import TrialState

        return len(self._trials_of(TrialState.FAIL))

    @property
    def remaining(self) -> int:
        """Trials still to ask: none once more than max_failures failed."""
        if self.failures > self.plan.config.max_failures:
            return 0
        return max(0, self.plan.config.trials - len(self._trials_of()))

    def running(self, name: str) -> bool:
        """Run ``name`` is a trial asked and not yet told."""
        return name in self._trials

    def counts(self) -> dict:
        """How many trials are in each state, e.g. {"fail": 4}."""
        states = [t.state.name.lower() for t in self._trials_of()]
        return {s: states.count(s) for s in dict.fromkeys(states)}

    def settle(self, records: dict) -> None:
        """Tell the interrupted trials whose finished run the folder kept (``records`` by run
        name): the process died after the folder had the record, before Optuna was told."""
        for trial in list(self._interrupted):
            record = records.get(trial_name(trial.number))
            if record is not None:
                self._interrupted.remove(trial)
                self._trials[record.name] = trial
                self.tell(record)

    @property
    def done(self) -> bool:
        return not self.remaining and not self._trials and not self._interrupted

    def ask(self, n: int = 1) -> list:
        """Up to ``n`` runs to train: first the trials a crash interrupted, then new ones. A
        sampled configuration the model refuses (say k above the code size) fails at once."""
        out = []
        while self._interrupted and len(out) < n:
            trial = self._interrupted.pop(0)
            out.append(self._attach(trial))
        while len(out) < n and self.remaining:
            number = len(self._trials_of())
            self.study.sampler = make_sampler(self.plan, number)
            trial = self.study.ask({d.name: d.distribution() for d in self.plan.dimensions})
            try:
                out.append(self._attach(trial))
            except ConfigError as err:
                self._trials.pop(trial_name(trial.number))
                self._finish(trial, "failed", str(err), None)
        return out

    def _attach(self, trial):
        name = trial_name(trial.number)
        self._trials[name] = trial
        return self.plan.spec(name, self.values(trial.params))

    def values(self, params: dict) -> dict:
        """A trial's params (as Optuna stores them) as the study's values."""
        return {d.name: d.decode(params[d.name]) for d in self.plan.dimensions}

    def report(self, name: str, record: dict) -> str | None:
        """The epoch ``record`` of run ``name`` to Optuna; why the run is pruned, or None."""
        value = record.get(self.plan.config.metric)
        if not self.plan.epoch_metric or value is None or not math.isfinite(value):
            return None
        trial = self._trials[name]
        with warnings.catch_warnings():  # an epoch reported again after a resume is ignored
            warnings.simplefilter("ignore", UserWarning)
            trial.report(value, record["epoch"])
        if not trial.should_prune():
            return None
        who = PRUNER_NAMES.get(self.plan.config.pruner, self.plan.config.pruner)
        return f"pruned by {who} at epoch {record['epoch']} ({self.plan.config.metric} {value:.4g})"

    def prune_callback(self, name: str) -> PruneCallback:
        """The callback that prunes run ``name`` when it trains in this process."""
        return PruneCallback(lambda record: self.report(name, record))

    def tell(self, record) -> str:
        """How run ``record.name`` (a records.RunRecord) ended; returns the trial's state."""
        trial = self._trials.pop(record.name)
        value = self._value(record)
        status, reason = record.status, record.reason
        if status in ("completed", "stopped_early") and value is None:
            status, reason = "failed", f"the run produced no finite {self.plan.config.metric}"
        return self._finish(trial, status, reason, value, record).state.name.lower()

    def _value(self, record):
        metric = self.plan.config.metric
        value = record.metrics.get(metric, getattr(record, metric, None))
        if value is None and record.history:
            value = record.history[-1].get(metric)
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        return float(value) if ok else None

    def _finish(self, trial, status: str, reason: str, value, record=None):
        from optuna.samplers import RandomSampler
        from optuna.trial import TrialState

        # Samplers are made per ask; the one told holds no state, and GridSampler's after_trial
        # would call study.stop() on the last point, which only Optuna's own optimize loop may.
        self.study.sampler = RandomSampler()

        trial.set_user_attr("status", status)
        if reason:
            trial.set_user_attr("reason", reason)
        if record is not None:
            trial.set_user_attr("epochs", record.epochs_run)
            trial.set_user_attr("seconds", record.seconds)
        if status in ("completed", "stopped_early"):
            return self.study.tell(trial, value)
        if status == "pruned":
            return self.study.tell(trial, state=TrialState.PRUNED)
        return self.study.tell(trial, state=TrialState.FAIL)  # failed, diverged: count as failures

    # -------------------------------------------------------------- results

    def best(self) -> Best | None:
        """The best completed trial, or None when no trial completed."""
        from optuna.trial import TrialState

        if not self._trials_of(TrialState.COMPLETE):
            return None
        t = self.study.best_trial
        values = self.values(t.params)
        return Best(t.number, trial_name(t.number), t.value, values,
                    self.plan.spec(trial_name(t.number), values))

    def confirm_runs(self) -> list:
        """The best configuration once per ``confirm_seeds`` seed (``confirm-seed1``, ...), to
        report as one configuration repeated over seeds (aelab.aggregate)."""
        best = self.best()
        if best is None:
            return []
        return [self.plan.spec(f"confirm-seed{s}", best.values, seed=s) for s in self.plan.config.confirm_seeds]
