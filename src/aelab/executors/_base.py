"""The contract of an executor, and the unit of work every executor runs.

An executor trains a study's tasks somewhere (this process, worker processes, a Ray cluster)
by calling :func:`train_run` on each, and passes the events it emits, ``(method, *args)`` of
the :class:`aelab.listeners.Listener` hooks, back to the driver's listeners, which alone write
the run folder. So the folder, the console log and the numbers are the same whichever executor
trained the runs: each run seeds its own generators, and records are written in study order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..callbacks import Callback
from ..errors import AelabError
from ..records import RunRecord
from ..registry import EXECUTORS

Emit = Callable[..., None]  # emit(method, *args): a listener event, e.g. emit("on_epoch", name, record)


@dataclass(frozen=True)
class Task:
    """One unit of work: planned runs (plan.RunSpec) and their resume states (if interrupted).

    Several runs are a stack group (``plan.stack_groups``): they train together as one stacked
    model (``aelab.stacked``) when ``train.vectorize`` says so. Executors use only ``names``,
    ``device`` and ``cost``: a group is one task for every executor.
    """

    specs: tuple
    resumes: tuple = ()  # runs.states bytes after the last finished epoch, or None, per spec
    prune: bool = False  # after each epoch the run asks the driver whether to go on (a search trial)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    @property
    def device(self) -> str:
        return self.specs[0].train.device

    def cost(self, n_train: int) -> float:
        return sum(estimated_cost(s, n_train) for s in self.specs)

    def resume(self, i: int) -> bytes | None:
        return self.resumes[i] if self.resumes else None


@dataclass(frozen=True)
class ExecutorInfo:
    """What the executor registry knows of an executor besides its class."""

    summary: str  # one line for `aelab run --help`
    with_jobs: str | None = None  # the executor that takes over when --jobs asks for more than one


class Executor:
    """Where tasks train. ``check`` fails in one sentence before any folder exists (a missing
    extra); ``run`` trains every task and sends its events to ``emit``; ``describe`` is what
    metrics.json's environment records of the execution."""

    name = ""  # set by register_executor

    def __init__(self, jobs: int = 1, threads: int | None = None, address: str | None = None):
        self.jobs, self.threads, self.address = jobs, threads, address

    def check(self) -> None:
        """Raise AelabError if this executor cannot run here."""

    def run(self, tasks: list[Task], splits: dict, emit: Emit) -> None:
        raise NotImplementedError

    def threads_per_run(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.jobs)

    def describe(self) -> dict:
        return {"executor": self.name, "jobs": self.jobs, "threads per run": self.threads_per_run()}


class Feed:
    """Where an executor takes its tasks from, as workers free up: a fixed list here; a search
    (``aelab.search.engine``) asks Optuna for the next trials only when a worker is free, and
    answers ``decide`` for its trials after every epoch, in the driver."""

    prunes = False  # whether runs ask ``decide`` (workers then need a reply channel)

    def __init__(self, tasks=()):
        self.tasks = list(tasks)

    def take(self, n: int) -> list[Task]:
        """Up to ``n`` tasks to start now; none once nothing is left (when no task is running)."""
        out, self.tasks = self.tasks[:n], self.tasks[n:]
        return out

    def decide(self, name: str, record: dict) -> str | None:
        """Why run ``name`` stops after this epoch ``record`` (pruned), or None to go on."""
        return None


def as_feed(tasks, order=None) -> Feed:
    """``tasks`` as a Feed: a list in the order ``order(list)`` gives, or a Feed as it is."""
    if isinstance(tasks, Feed):
        return tasks
    return Feed(order(list(tasks)) if order else tasks)


def register_executor(name: str, summary: str, with_jobs: str | None = None):
    """Decorator: put an Executor subclass under ``name`` in ``aelab.registry.EXECUTORS``."""

    def deco(cls):
        cls.name = name
        return EXECUTORS.register(name, ExecutorInfo(summary, with_jobs))(cls)

    return deco


def planned_record(spec) -> RunRecord:
    """The record of a planned run before it trains."""
    from ..models.summary import (
        LOSS_NAMES,  # torch: not at import, `aelab --help` reads the registry
    )

    t = spec.train
    return RunRecord(name=spec.name, model=spec.model, label=spec.label, params=dict(spec.params),
                     sweep=dict(spec.sweep), seed=t.seed, batch_size=t.batch_size, optimizer=t.optimizer,
                     learning_rate=t.learning_rate, epochs_max=t.epochs,
                     loss_name=LOSS_NAMES.get(spec.params.get("loss", "bce"), ""))


class _Events(Callback):
    """Emits a run's per-epoch events: its resume state, then its epoch record."""

    def __init__(self, name: str, emit: Emit):
        self.name, self.emit = name, emit

    def on_epoch_end(self, state, record):
        from ..runs.states import resume_bytes  # torch: not at import, the CLI reads this registry
        from ..train import snapshot

        self.emit("on_state", self.name, resume_bytes(snapshot(state)))
        self.emit("on_epoch", self.name, record)


def train_run(task: Task, splits: dict, emit: Emit, decide=None) -> None:
    """Train a task's runs on ``splits``, emitting per run on_run_start, then per epoch on_state
    and on_epoch, then on_run_end. A run that fails is reported, never raised: the study goes on.
    A group stacks (``aelab.stacked``) the members that resume from the same epoch, if stacking
    is on, or if ``auto`` and a timing here says it is faster; else its runs train one by one.
    A ``task.prune`` run (a search trial, never stacked) asks ``decide(name, record)`` (Feed.decide,
    in the driver) after every epoch, before its state is saved: a saved epoch was reported."""
    from ..runs.states import load_resume

    states = [load_resume(task.resume(i)) if task.resume(i) else None for i in range(len(task.specs))]
    by_epoch: dict[int, list[int]] = {}
    for i, st in enumerate(states):
        by_epoch.setdefault(st.epoch if st else 0, []).append(i)
    for members in by_epoch.values():
        specs = [task.specs[i] for i in members]
        if len(members) > 1 and _stacks(specs, splits):
            _train_stack(specs, [states[i] for i in members], splits, emit)
        else:
            for i in members:
                _train_one(task.specs[i], states[i], splits, emit, decide if task.prune else None)


def _stacks(specs: list, splits: dict) -> bool:
    if all(s.train.vectorize == "on" for s in specs):
        return True
    from ..models import create_model
    from ..stacked import stacking_speedup, timing_pays

    if not timing_pays([s.train for s in specs], len(splits["train"])):
        return False
    shape = tuple(splits["train"].x.shape[1:])
    speedup = stacking_speedup(lambda i: create_model(specs[i].model, shape, seed=specs[i].seed, **specs[i].params),
                               splits["train"].x, [s.train for s in specs])
    return speedup > 1.05  # a clear gain, not timing noise


def _train_one(spec, state, splits: dict, emit: Emit, decide=None) -> None:
    from ..models import create_model
    from ..runs.checkpoints import checkpoint_bytes
    from ..train import fit

    callbacks = [_Events(spec.name, emit)]
    if decide is not None:
        from ..search import PruneCallback

        callbacks.insert(0, PruneCallback(lambda record: decide(spec.name, record)))
    record, model = planned_record(spec), None
    try:
        model = create_model(spec.model, tuple(splits["train"].x.shape[1:]), seed=spec.seed, **spec.params)
        emit("on_run_start", spec.name, spec.train.epochs, state.epoch if state else 0)
        hist = fit(model, {"train": splits["train"], "val": splits.get("val")}, spec.train,
                   callbacks, resume=state)
        _fill(record, hist, _test_loss(model, splits, spec.train, hist))
    except Exception as err:  # a bug or a numerical failure in one run must not stop the study
        _failed(record, err)
    trained = model is not None and record.epochs_run > 0 and record.status != "pruned"  # pruned: no model kept
    emit("on_run_end", spec.name, record, checkpoint_bytes(model) if trained else None)


def _train_stack(specs: list, states: list, splits: dict, emit: Emit) -> None:
    """The members trained as one stack; each gets the record and checkpoint it would alone."""
    from ..models import create_model
    from ..runs.checkpoints import checkpoint_bytes
    from ..stacked import fit_stacked

    records, models, hists = [planned_record(s) for s in specs], [], []
    try:
        shape = tuple(splits["train"].x.shape[1:])
        models = [create_model(s.model, shape, seed=s.seed, **s.params) for s in specs]
        for s, st in zip(specs, states):
            emit("on_run_start", s.name, s.train.epochs, st.epoch if st else 0)
        hists = fit_stacked(models, {"train": splits["train"], "val": splits.get("val")}, [s.train for s in specs],
                            callbacks=[[_Events(s.name, emit)] for s in specs], resumes=states)
        for rec, model, s, hist in zip(records, models, specs, hists):
            _fill(rec, hist, _test_loss(model, splits, s.train, hist))
            rec.stacked_with = [o.name for o in specs if o is not s]
    except Exception as err:  # as for one run: the study goes on
        for rec in records:
            _failed(rec, err)
    for i, rec in enumerate(records):
        trained = len(models) > i and rec.epochs_run > 0
        emit("on_run_end", rec.name, rec, checkpoint_bytes(models[i]) if trained else None)


def _failed(record: RunRecord, err: Exception) -> None:
    record.status = "failed"
    record.reason = str(err) if isinstance(err, AelabError) else f"{type(err).__name__}: {err}"


def _test_loss(model, splits: dict, cfg, hist) -> float | None:
    from ..train import evaluate_loss

    if "test" not in splits or hist.status in ("diverged", "pruned"):
        return None
    return evaluate_loss(model, splits["test"], cfg.eval_batch_size, cfg.input_noise, cfg.seed,
                         precision=cfg.precision).get("loss")


def _fill(record: RunRecord, hist, test_loss: float | None) -> None:
    """A run's record from its training history (callbacks.History) and test loss."""
    last = hist.last
    record.status, record.reason = hist.status, hist.reason
    record.epochs_run, record.best_epoch = hist.epochs_run, hist.best_epoch
    record.stopped_early = hist.status == "stopped_early"
    record.train_loss, record.val_loss = last.get("train_loss"), last.get("val_loss")
    record.test_loss = test_loss
    record.seconds, record.peak_rss_mb = hist.seconds, hist.peak_rss_mb
    record.seconds_per_epoch = hist.seconds / max(hist.epochs_run, 1)
    record.history = hist.epochs


def estimated_cost(spec, n_train: int) -> float:
    """A run's relative training time, for scheduling: its steps, each a fixed overhead plus
    work per image (about 64 images' worth of work per step on a CPU)."""
    steps = -(-n_train // spec.train.batch_size)
    return spec.train.epochs * (steps + n_train / 64)


def longest_first(tasks: list[Task], splits: dict) -> list[Task]:
    """Tasks in the order that finishes soonest on parallel workers: the last to start is short."""
    n = len(splits["train"])
    return sorted(tasks, key=lambda t: -t.cost(n))


def default_jobs(specs: list, cores: int | None = None) -> tuple[int, int]:
    """``--jobs auto``: (workers, threads each). Small batches keep a step overhead-bound, so one
    thread does as well as two and runs are better spread one per core; large batches use the
    threads, so fewer runs at a time get more each."""
    cores = cores or os.cpu_count() or 1
    if not specs:
        return 1, cores
    small = sum(s.train.batch_size <= 256 for s in specs) >= len(specs) / 2
    jobs = min(len(specs), cores if small else max(1, cores // 4))
    return jobs, max(1, cores // jobs)
