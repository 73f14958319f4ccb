"""The runner: a study's runs (each one unit of work, resumable), then its steps, into a folder.

``run_study`` loads the data, creates ``<out>.incomplete``, trains the planned runs through an
executor (this process, ``--jobs N`` worker processes, or Ray) and writes each run's record,
checkpoint and log as it finishes; the running run's resume state is saved after every epoch.
Then the steps run on the trained models, and the folder gets its final name. ``resume_study``
continues an interrupted folder: finished runs are kept, an interrupted run continues after its
last finished epoch, and the result is the same as an uninterrupted run of the study.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

from .errors import AelabError, ConfigError
from .executors import Task, create_executor
from .listeners import Listeners, check_listeners
from .plan import stack_groups
from .records import RunRecord
from .runs import RunFolder, load_checkpoint, read_metrics
from .runs.journal import Journal

__all__ = ["run_study", "resume_study", "StudyFailed"]


class StudyFailed(AelabError):
    """Every run failed, or a step did: the folder stays ``.incomplete`` with the reasons."""

    exit_code = 1


# ---------------------------------------------------------------- a study


def _console(quiet: bool):
    import io

    from rich.console import Console

    # Quiet still records console.log; it just prints to nowhere. Wide enough for the tables when
    # writing to a file or a pipe.
    return Console(record=True, file=io.StringIO() if quiet else None,
                   width=None if sys.stdout.isatty() and not quiet else 120,
                   force_jupyter=False if quiet else None)  # Jupyter would display it anyway


def _environment() -> dict:
    import torch

    from . import __version__

    return {"aelab": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_study(study, out: str | Path | None = None, *, data_dir=None, console=None,
              runs_root: str | Path = "runs", quiet: bool = False, jobs: int | str = 1,
              threads: int | None = None, executor: str = "local", ray_address: str | None = None,
              track: tuple[str, ...] = (), track_uri: str | None = None, listeners=()) -> Path:
    """Run every run of a study, then its steps; returns the finished run folder.

    ``study`` is a loaded :class:`aelab.config.Study` or a built-in name / file. Nothing is
    written until the data have loaded and every check passed; from then on the folder
    ``<out>.incomplete`` keeps every finished run, whatever happens. ``listeners`` are
    :class:`aelab.Listener` objects that receive the training events as they happen::

        class ValLoss(aelab.Listener):
            def on_epoch(self, name, record):
                print(name, record["epoch"], record.get("val_loss"))

        aelab.run_study("quickstart", listeners=[ValLoss()])
    """
    from .config import load_study

    if isinstance(study, str):
        study = load_study(study)
    target = RunFolder.check_target(out if out is not None else RunFolder.default_name(study.name, runs_root))
    runner = create_executor(executor, jobs, threads, ray_address, _planned(study))
    session = _Session(study, console or _console(quiet), quiet, data_dir, track, track_uri, listeners)
    session.prepare()  # the data and what needs them: still nothing written
    folder = RunFolder.create(target)
    try:
        import tomli_w

        folder.start(tomli_w.dumps(_drop_none(study.resolved)), {
            "study": study.name, "source": study.source, "quick": study.quick,
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        return session.execute(folder, {}, runner)
    except BaseException as err:
        err.run_folder = folder.path  # for the message that says how to resume
        raise
    finally:
        folder.release()


def resume_study(path: str | Path, *, data_dir=None, console=None, quiet: bool = False,
                 jobs: int | str = 1, threads: int | None = None, executor: str = "local",
                 ray_address: str | None = None, track: tuple[str, ...] = (),
                 track_uri: str | None = None, listeners=()) -> Path:
    """Continue the unfinished study in ``path`` (a ``<out>.incomplete`` folder); the options
    are those of :func:`run_study`."""
    from .config import build_study, parse_toml

    folder = RunFolder.open(path)  # checks resume.json and study.toml are there and sound
    try:
        state = folder.resume_state
        study = build_study(parse_toml(folder.study_file), state.get("source", ""),
                            quick=bool(state.get("quick")))
        finished, notes = _kept_runs(folder, study)
        runner = create_executor(executor, jobs, threads, ray_address,
                                 [s for s in _planned(study) if s.name not in finished])
        session = _Session(study, console or _console(quiet), quiet, data_dir or state.get("data_dir"),
                           track, track_uri, listeners)
        session.prepare()
        session.note(notes)
        return session.execute(folder, finished, runner)
    except BaseException as err:
        err.run_folder = folder.path
        raise
    finally:
        folder.release()


def _planned(study) -> list:
    """The runs of a study to size the executor and check the models by: a search's trials are
    asked as it runs, so its largest configuration stands for each of them."""
    if study.search is None:
        return study.runs
    return study.search.ends()[1:] * (study.search.config.trials + len(study.search.config.confirm_seeds))


def _kept_runs(folder, study) -> tuple[dict, list[str]]:
    """The finished runs an interrupted folder keeps, and a sentence for each one trained again:
    its record must match its planned run (a search's trials: be whole) and, if it trained and
    was not pruned, its checkpoint be there (the folder is not trusted: a metrics.json claiming
    every run finished keeps none without)."""
    specs, kept, notes = {s.name: s for s in study.runs}, {}, []
    for entry in read_metrics(folder.path).get("runs", []) if folder.has_metrics else []:
        rec = RunRecord.from_json(entry)
        spec = specs.get(rec.name)
        if not rec.finished or (spec is None and study.search is None):
            continue
        if ((spec is not None and (rec.model != spec.model or rec.epochs_max != spec.train.epochs))
                or rec.epochs_run > rec.epochs_max or len(rec.history) != rec.epochs_run):
            notes.append(f"Run {rec.name} trains again: its record in metrics.json does not match the study.")
        elif rec.epochs_run > 0 and rec.status != "pruned" and not folder.has_checkpoint(rec.name):
            notes.append(f"Run {rec.name} trains again: its checkpoint is missing.")
        else:
            kept[rec.name] = rec
    return kept, notes


class _Session:
    """One execution of a study, in order: prepare (data, header), execute (the runs, through the
    listeners), then the steps and the report; the folder's writing is the Journal's."""

    def __init__(self, study, console, quiet, data_dir, track, track_uri, listeners):
        console.record = True  # console.log is the recording (also of a console the caller gave)
        self.study, self.console, self.quiet, self.data_dir = study, console, quiet, data_dir
        self.track, self.track_uri, self.user = track, track_uri, check_listeners(listeners)
        self.no_best = None  # why a search found no best configuration

    def prepare(self) -> None:
        """Load the data and print the study's header; checks that need the data run here,
        before any folder exists."""
        from .datasets import known_image_shape, prepare
        from .models import create_model
        from .models.summary import model_summary, training_line
        from .plan import check_models
        from .report.console import print_data, status

        study, console = self.study, self.console
        console.rule(f"[bold]{study.name}", characters="─")
        if study.description:
            console.print(study.description, markup=False, highlight=False)
        with status(console, f"Loading {study.data.dataset} ..."):
            self.splits, self.info = prepare(study.data, study.seed, self.data_dir)
        print_data(console, self.info)
        from .registry import STEPS

        labelled = sorted({s.kind for s in study.steps if STEPS.get(s.kind).info.needs_labels})
        if labelled and self.splits["train"].y is None:
            raise ConfigError(f"Steps {', '.join(labelled)} need class labels, but dataset "
                              f"{study.data.dataset!r} has none; remove those steps or use labelled data.")
        from .config import Limits

        self.input_shape = tuple(self.splits["train"].x.shape[1:])
        if known_image_shape(study.data) != self.input_shape:  # else checked when the study loaded
            check_models(study.search.ends() if study.search else study.runs, self.input_shape, Limits.from_env())
        self.summaries = {}
        for spec in study.search.ends()[1:] if study.search else study.runs:
            if spec.label in self.summaries:
                continue
            model = create_model(spec.model, self.input_shape, seed=spec.seed, **spec.params)
            # every run of this model, so that a swept batch size reads "batch 32 or 256 (by run)"
            trains = [s.train for s in study.runs if s.label == spec.label]
            text = model_summary(model) + "\n" + training_line(trains, model)
            self.summaries[spec.label] = text
            console.print(f"\nModel {spec.label} ({spec.model})", style="bold", markup=False, highlight=False)
            console.print(text, markup=False, highlight=False)
        self.header = console.export_text(clear=True)

    def note(self, lines: list[str]) -> None:
        """Sentences on what a resume does differently (a run trained again), in console.log too."""
        for line in lines:
            self.console.print(line, style="yellow", markup=False, highlight=False)
        self.header += self.console.export_text(clear=True)

    def _state(self, folder, spec) -> bytes | None:
        """A run's saved resume state if it can continue the run, else None with a sentence."""
        from .runs.states import check_resume, load_resume

        data = folder.read_state(spec.name)
        why = data and check_resume(load_resume(data), spec, self.input_shape)
        if why:
            self.note([f"Run {spec.name} starts again from scratch: {why}."])
            return None
        return data

    # -------------------------------------------------------------- running

    def execute(self, folder, finished: dict, executor) -> Path:
        """Train the unfinished runs; every event goes to the folder's journal, the display,
        the trackers and the user's listeners, in that order."""
        from .report.progress import RunDisplay
        from .track import open_trackers

        study, console = self.study, self.console
        journal = Journal(folder, study, self.info, self.data_dir, self.header, self.summaries, finished)
        display = RunDisplay(console, len(_planned(study)), study.name, self.quiet)
        trackers = open_trackers(self.track, self.track_uri, study, self.info, folder, console)
        listeners = Listeners([journal, display, *trackers, *self.user])
        pending = [spec for spec in study.runs if spec.name not in finished]
        tasks = [Task(tuple(g), tuple(self._state(folder, s) for s in g)) for g in stack_groups(pending)]
        journal.write()
        try:
            with display:
                for record in journal.ordered():
                    display.end(record, kept=True)
                if study.search is not None:
                    from .search.engine import run_search

                    self.no_best = run_search(study.search, folder, finished, executor, self.splits, listeners)
                else:
                    executor.run(tasks, self.splits, listeners)
        finally:
            console.export_text(clear=True)  # the live display is not part of console.log
            journal.write()
        return self._finish(folder, journal, listeners, executor.describe())

    # -------------------------------------------------------------- steps and the report

    def _finish(self, folder, journal, listeners, execution: dict) -> Path:
        from .aggregate import aggregates
        from .report.console import print_results
        from .report.html import write_report

        console = self.console
        records = journal.ordered()
        models = {r.name: load_checkpoint(folder.checkpoint(r.name), nonfinite=r.status == "diverged")
                  for r in records if folder.has_checkpoint(r.name)}
        ctx, failures = self._steps(folder, records, models)
        groups = aggregates(records)
        search = self._search(folder, records, ctx)
        print_results(console, records, ctx.summary, groups)
        complete = not failures and not self.no_best and any(r.status != "failed" for r in records)
        metrics = journal.metrics(complete, {**search,
            "summary": ctx.summary, "figures": ctx.figures, "captions": ctx.captions,
            "model_summaries": self.summaries, "aggregates": groups,
            "environment": {**_environment(), **execution}})
        metrics["runs"] += ctx.baselines
        where = folder.final if complete else folder.path
        console.print(f"\nRun folder: {where} (open report.html in a browser)", markup=False, highlight=False)
        folder.write_results(metrics, journal.log(console.export_text(clear=True)))
        write_report(folder.path)  # from the metrics.json just written, as `aelab report` does
        listeners("on_study_end", folder.path, metrics)
        if not complete:
            reason = failures[0] if failures else self.no_best or (
                f"all {len(records)} runs failed (first: {records[0].reason})")
            raise StudyFailed(f"The study did not complete: {reason}; the results so far are in "
                              f"{folder.path}.")
        return folder.finish()

    def _search(self, folder, records, ctx) -> dict:
        """A search's part of metrics.json (its lines also go to the summary), or nothing."""
        if self.study.search is None:
            return {}
        from .search.engine import summary

        search = summary(self.study.search, folder, records)
        ctx.summary[:0] = search["lines"]
        return {"search": search}

    def _steps(self, folder, records, models):
        """Run the study's steps into a steps.StudyContext; a failed step is printed and added
        to the summary, the others go on. Returns the context and the failures."""
        from .registry import STEPS
        from .steps import StudyContext

        study, console = self.study, self.console
        ctx = StudyContext(study, self.splits, records, models, folder, console, data_info=self.info,
                           data_dir=self.data_dir)
        failures = []
        for step in study.steps:
            try:
                STEPS.get(step.kind).fn(ctx, **step.params)
            except Exception as err:
                why = str(err) if isinstance(err, AelabError) else f"{type(err).__name__}: {err}"
                console.print(f"Step {step.kind} failed: {why}", style="red", markup=False, highlight=False)
                failures.append(f"Step {step.kind} failed: {why}")
        ctx.summary.extend(failures)
        return ctx, failures


def _drop_none(obj):
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj
