"""The runner: a study's runs (each one unit of work, resumable), then its steps, into a folder.

``run_study`` loads the data, creates ``<out>.incomplete``, trains the planned runs through an
executor (this process, ``--jobs N`` worker processes, or Ray) and writes each run's record,
checkpoint and log as it finishes; the running run's resume state is saved after every epoch.
Then the steps run on the trained models, and the folder gets its final name. ``resume_study``
continues an interrupted folder: finished runs are kept, an interrupted run continues after its
last finished epoch, and the result is the same as an uninterrupted run of the study.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from .errors import AelabError, ConfigError
from .records import RunRecord, dumps

__all__ = ["run_study", "resume_study", "StudyFailed", "load_run"]


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
              track: tuple[str, ...] = (), track_uri: str | None = None) -> Path:
    """Run every run of a study, then its steps; returns the finished run folder.

    ``study`` is a loaded :class:`aelab.config.Study` or a built-in name / file. Nothing is
    written until the data have loaded and every check passed; from then on the folder
    ``<out>.incomplete`` keeps every finished run, whatever happens.
    """
    from .config import load_study
    from .runs import RunFolder

    if isinstance(study, str):
        study = load_study(study)
    target = RunFolder.check_target(out if out is not None else RunFolder.default_name(study.name, runs_root))
    session = _Session(study, console or _console(quiet), quiet, data_dir, track, track_uri)
    session.prepare()  # the data and what needs them: still nothing written
    folder = RunFolder.create(target)
    try:
        import tomli_w

        folder.write("study.toml", data=tomli_w.dumps(_drop_none(study.resolved)))
        folder.write("resume.json", data=dumps({
            "study": study.name, "source": study.source, "quick": study.quick,
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
        return session.execute(folder, {}, jobs, threads, executor, ray_address)
    except BaseException as err:
        err.run_folder = folder.path  # for the message that says how to resume
        raise
    finally:
        folder.release()


def resume_study(path: str | Path, *, data_dir=None, console=None, quiet: bool = False,
                 jobs: int | str = 1, threads: int | None = None, executor: str = "local",
                 ray_address: str | None = None, track: tuple[str, ...] = (),
                 track_uri: str | None = None) -> Path:
    """Continue the unfinished study in ``path`` (a ``<out>.incomplete`` folder)."""
    from .config import build_study, parse_toml
    from .runs import RunFolder, read_metrics

    folder = RunFolder.open(path)  # checks resume.json and study.toml are there and sound
    try:
        state = folder.resume_state
        study = build_study(parse_toml(folder.path / "study.toml"), state.get("source", ""),
                            quick=bool(state.get("quick")))
        finished = {}
        if (folder.path / "metrics.json").is_file():
            for entry in read_metrics(folder.path).get("runs", []):
                rec = RunRecord.from_json(entry)
                if rec.finished and any(s.name == rec.name for s in study.runs):
                    finished[rec.name] = rec
        session = _Session(study, console or _console(quiet), quiet, data_dir or state.get("data_dir"),
                           track, track_uri)
        session.prepare()
        return session.execute(folder, finished, jobs, threads, executor, ray_address)
    except BaseException as err:
        err.run_folder = folder.path
        raise
    finally:
        folder.release()


class _Session:
    """One execution of a study: its console, data and the folder's progress."""

    def __init__(self, study, console, quiet, data_dir, track, track_uri):
        console.record = True  # console.log is the recording (also of a console the caller gave)
        self.study, self.console, self.quiet, self.data_dir = study, console, quiet, data_dir
        self.track, self.track_uri = track, track_uri

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
            check_models(study.runs, self.input_shape, Limits.from_env())
        self.summaries = {}
        for spec in study.runs:
            if spec.label in self.summaries:
                continue
            model = create_model(spec.model, self.input_shape, seed=spec.seed, **spec.params)
            text = model_summary(model) + "\n" + training_line(spec.train, model)
            self.summaries[spec.label] = text
            console.print(f"\nModel {spec.label} ({spec.model})", style="bold", markup=False, highlight=False)
            console.print(text, markup=False, highlight=False)
        self.header = console.export_text(clear=True)

    # -------------------------------------------------------------- running

    def execute(self, folder, finished: dict, jobs, threads, executor, ray_address) -> Path:
        from . import executors
        from .report.progress import RunDisplay
        from .track import open_trackers

        study, console = self.study, self.console
        self.folder, self.records = folder, dict(finished)
        self.trackers = open_trackers(self.track, self.track_uri, study, self.info, folder, console)
        tasks = []
        for spec in study.runs:
            if spec.name in finished:
                continue
            resume = folder.file("resume", f"{spec.name}.safetensors")
            tasks.append((spec, resume.read_bytes() if resume.is_file() else None))
        if jobs == "auto":
            jobs, auto_threads = executors.default_jobs([s for s, _ in tasks])
            threads = threads or auto_threads
        jobs = max(1, min(int(jobs), len(tasks) or 1))
        if jobs > 1 or executor == "ray":  # longest first: the last run to start is a short one
            n = len(self.splits["train"])
            tasks.sort(key=lambda t: -executors.estimated_cost(t[0], n))
        if executor == "ray":
            executors.check_ray()
        self._write_progress()
        self.display = RunDisplay(console, len(study.runs), study.name, self.quiet)
        try:
            with self.display:
                for spec in study.runs:
                    if spec.name in finished:
                        self.display.end(finished[spec.name], kept=True)
                cores = os.cpu_count() or 1
                if executor == "ray":  # a task per run, one CPU each unless --threads says
                    executors.run_ray(tasks, self.splits, self._on_event, threads or 1, ray_address)
                elif jobs > 1:
                    executors.run_processes(tasks, self.splits, self._on_event, jobs,
                                            threads or max(1, cores // jobs))
                else:
                    if threads:
                        import torch

                        torch.set_num_threads(threads)
                    executors.run_local(tasks, self.splits, self._on_event)
        finally:
            console.export_text(clear=True)  # the live display is not part of console.log
            self._write_progress()
        for t in self.trackers:
            t.close_runs()
        self.execution = {"executor": executor, "jobs": jobs,
                          "threads per run": threads or (1 if executor == "ray" else max(1, cores // jobs))}
        return self._finish()

    def _on_event(self, kind: str, name: str, payload) -> None:
        spec = next(s for s in self.study.runs if s.name == name)
        if kind == "start":
            from .executors import new_record

            self.display.start(name, payload["epochs"], payload["done"])
            for t in self.trackers:
                t.start_run(name, new_record(spec).to_json())
        elif kind == "state":
            self.folder.write("resume", f"{name}.safetensors", data=payload)
        elif kind == "epoch":
            self.display.epoch(name, payload, spec.train.epochs)
            for t in self.trackers:
                t.log_epoch(name, payload)
        elif kind == "end":
            record = RunRecord.from_json(payload["record"])
            if payload["checkpoint"] is not None:
                self.folder.write("checkpoints", f"{name}.safetensors", data=payload["checkpoint"])
            self.records[name] = record
            self._write_progress()
            self.folder.remove("resume", f"{name}.safetensors")
            self.display.end(record)
            for t in self.trackers:
                t.end_run(name, record.to_json())

    def _ordered(self) -> list[RunRecord]:
        return [self.records[s.name] for s in self.study.runs if s.name in self.records]

    def _metrics(self, complete: bool, extra: dict | None = None) -> dict:
        return {"study": self.study.name, "description": self.study.description, "dataset": self.info.to_json(),
                "data_dir": str(Path(self.data_dir).resolve()) if self.data_dir else None,
                "seed": self.study.seed, "quick": self.study.quick, "complete": complete,
                "runs": [r.to_json() for r in self._ordered()], **(extra or {})}

    def _log(self, footer: str = "") -> str:
        from .report.progress import run_block

        blocks = "\n".join(run_block(r) for r in self._ordered())
        return self.header + ("\n" + blocks + "\n" if blocks else "") + footer

    def _write_progress(self) -> None:
        """The folder's state so far: what a reader (or ``aelab report``) sees mid-study."""
        from .runs import history_csv

        metrics = self._metrics(complete=False, extra={"model_summaries": self.summaries})
        self.folder.write("metrics.json", data=dumps(metrics))
        self.folder.write("history.csv", data=history_csv(metrics["runs"]))
        self.folder.write("console.log", data=self._log())

    # -------------------------------------------------------------- steps and the report

    def _finish(self) -> Path:
        from .aggregate import aggregates
        from .registry import STEPS
        from .report.console import print_results
        from .report.html import write_report
        from .runs import history_csv, load_checkpoint
        from .steps import StudyContext

        study, console, folder = self.study, self.console, self.folder
        records = self._ordered()
        models = {}
        for r in records:
            path = folder.file("checkpoints", f"{r.name}.safetensors")
            if path.is_file():
                models[r.name] = load_checkpoint(path)
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
        groups = aggregates(records)
        print_results(console, records, ctx.summary, groups)
        complete = not failures and any(r.status != "failed" for r in records)
        metrics = self._metrics(complete, {
            "summary": ctx.summary, "figures": ctx.figures, "captions": ctx.captions,
            "model_summaries": self.summaries, "aggregates": groups,
            "environment": {**_environment(), **self.execution}})
        metrics["runs"] += ctx.baselines
        where = folder.final if complete else folder.path
        console.print(f"\nRun folder: {where} (open report.html in a browser)", markup=False, highlight=False)
        folder.write("metrics.json", data=dumps(metrics))
        folder.write("history.csv", data=history_csv(metrics["runs"]))
        folder.write("console.log", data=self._log(console.export_text(clear=True)))
        write_report(folder.path)  # from the metrics.json just written, as `aelab report` does
        for t in self.trackers:
            t.finish(folder.path, metrics)
        if not complete:
            reason = failures[0] if failures else f"all {len(records)} runs failed (first: {records[0].reason})"
            raise StudyFailed(f"The study did not complete: {reason}; the results so far are in "
                              f"{folder.path}.")
        return folder.finish()


def _drop_none(obj):
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


# ---------------------------------------------------------------- reading a run back


def load_run(folder: str | Path, data_dir=None):
    """A finished (or unfinished) run folder back in Python: see :class:`aelab.results.Run`."""
    from .results import open_run

    return open_run(folder, data_dir)

