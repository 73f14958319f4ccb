"""Experiment trackers (optional extras): MLflow and TensorBoard, fed live while a study runs.

A tracker gets every run as it starts, every epoch as it finishes and every run's final
record, then the study's results, figures and report; ``track_run`` replays a finished run
folder the same way, so an old folder can be logged later. A tracker that fails never costs a
training run: its error is printed once and the study goes on.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .executors import planned_record
from .listeners import Listener
from .runs.folder import (
    FIGURES,
    HISTORY,
    METRICS,
    REPORT,
    STUDY,
    TENSORBOARD,
    figure_paths,
    read_metrics,
)

if TYPE_CHECKING:  # for annotations only: aelab.datasets imports torch
    from .datasets import DataInfo

EXTRAS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # tracker -> module it needs


def check_tracker(kind: str) -> None:
    """Fail before training, in one sentence, if a tracker is unknown or its extra is missing."""
    if kind not in EXTRAS:
        raise ConfigError(f"--track {kind!r} is not a tracker; choose one of: {', '.join(EXTRAS)}.")
    if importlib.util.find_spec(EXTRAS[kind]) is None:
        raise ConfigError(f"--track {kind} needs the {kind} extra; install it with "
                          f"pip install 'aelab[{kind}]'.")


def _numbers(d: dict) -> dict[str, float]:
    """The finite numeric values of a dict (bools and nested values left out)."""
    return {k: float(v) for k, v in d.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _run_params(entry: dict) -> dict[str, str]:
    params = {k: entry.get(k) for k in ("model", "batch_size", "optimizer", "learning_rate", "seed")}
    params.update({f"params.{k}": v for k, v in (entry.get("params") or {}).items()})
    return {k: str(v) for k, v in params.items()}


class Tracker:
    """The hooks a tracker implements; the runner calls them as events arrive."""

    where = ""

    def start_run(self, name: str, entry: dict) -> None: ...
    def log_epoch(self, name: str, record: dict) -> None: ...
    def end_run(self, name: str, entry: dict) -> None: ...
    def close_runs(self) -> None: ...
    def finish(self, run_dir: Path, metrics: dict) -> None: ...


class MLflowTracker(Tracker):
    """One parent MLflow run per study, one child per trained run (MLflow's nesting tag)."""

    def __init__(self, study: str, info: DataInfo | None, seed, uri: str | None, run_name: str):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.where = uri or "sqlite:///mlflow.db"
        self.client = MlflowClient(tracking_uri=self.where)
        exp = self.client.get_experiment_by_name(study)
        self.exp_id = exp.experiment_id if exp else self.client.create_experiment(study)
        self.parent = self.client.create_run(self.exp_id, run_name=run_name, tags={"aelab.study": study}).info.run_id
        self.client.log_batch(self.parent, params=[
            Param("seed", str(seed)), Param("dataset", str(getattr(info, "dataset", None))),
            Param("n_images", str(getattr(info, "n_images", None)))])  # None: a folder without data info
        self.study, self.children = study, {}

    def start_run(self, name, entry):
        from mlflow.entities import Param

        child = self.client.create_run(self.exp_id, run_name=name, tags={
            "mlflow.parentRunId": self.parent, "aelab.study": self.study}).info.run_id
        self.children[name] = child
        self.client.log_batch(child, params=[Param(k, v) for k, v in _run_params(entry).items()])

    def log_epoch(self, name, record):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, int(record["epoch"])) for k, v in _numbers(record).items() if k != "epoch"]
        self.client.log_batch(self.children[name], metrics=metrics)

    def _finals(self, name, entry):
        """The run's final numbers as ``final_<key>`` (again at the end, once steps added theirs)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        finals = [Metric(f"final_{k}", v, now, 0) for k, v in _numbers(entry).items()]
        for i in range(0, len(finals), 1000):  # log_batch takes at most 1000 metrics per call
            self.client.log_batch(self.children[name], metrics=finals[i:i + 1000])

    def end_run(self, name, entry):
        if name not in self.children:
            self.start_run(name, entry)
        self._finals(name, entry)
        self.client.set_tag(self.children[name], "aelab.status", str(entry.get("status", "")))
        self.client.set_terminated(self.children[name], "FAILED" if entry.get("status") == "failed" else "FINISHED")

    def finish(self, run_dir, metrics):
        for entry in metrics.get("runs") or []:  # step metrics (probe_accuracy, ...) arrive last
            if entry.get("name") in self.children:
                self._finals(entry["name"], entry)
        self.client.log_param(self.parent, "run_dir", str(Path(run_dir).resolve()))
        for name in (REPORT, METRICS, STUDY, HISTORY):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.parent, str(run_dir / name))
        if (run_dir / FIGURES).is_dir():
            self.client.log_artifacts(self.parent, str(run_dir / FIGURES), "figures")
        self.client.set_terminated(self.parent)


class TensorBoardTracker(Tracker):
    """One event folder per run (scalars per epoch), one for the study (summary, figures)."""

    def __init__(self, uri: str | None, default: Path):
        self.logdir = Path(uri) if uri else default
        self.where = str(self.logdir)
        self.writers = {}

    def _writer(self, name):
        from torch.utils.tensorboard import SummaryWriter

        if name not in self.writers:
            self.writers[name] = SummaryWriter(str(self.logdir / name))
        return self.writers[name]

    def start_run(self, name, entry):
        self._writer(name).add_text("settings", json.dumps(_run_params(entry), indent=1))

    def log_epoch(self, name, record):
        w = self._writer(name)
        for k, v in _numbers(record).items():
            if k != "epoch":
                w.add_scalar(k, v, int(record["epoch"]))
        w.flush()

    def close_runs(self):
        for w in self.writers.values():
            w.close()
        self.writers = {}

    def finish(self, run_dir, metrics):
        from matplotlib.image import imread

        w = self._writer("study")
        w.add_text("summary", "\n\n".join(metrics.get("summary") or []) or "(none)")
        for png in figure_paths(run_dir):
            w.add_image(png.stem, imread(png)[..., :3], dataformats="HWC")
        self.close_runs()


class Live(Listener):
    """A tracker fed by a study's events as they happen; its errors are reported once and then
    ignored: a tracker never costs a run. ``entries`` are the planned runs' records (JSON)."""

    def __init__(self, tracker: Tracker, kind: str, entries: dict[str, dict], console=None):
        self.tracker, self.kind, self.entries, self.console, self.failed = tracker, kind, entries, console, False

    def _call(self, method, *args):
        if self.failed:
            return
        try:
            getattr(self.tracker, method)(*args)
        except Exception as err:  # a tracker problem must not stop training
            self.failed = True
            msg = f"--track {self.kind} stopped logging ({type(err).__name__}: {err}); training goes on."
            if self.console is not None:
                self.console.print(msg, style="yellow", markup=False, highlight=False)

    def on_run_start(self, name, epochs, done):
        self._call("start_run", name, self.entries.get(name, {"name": name}))  # a search trial is asked as it runs

    def on_epoch(self, name, record):
        self._call("log_epoch", name, record)

    def on_run_end(self, name, record, checkpoint):
        self._call("end_run", name, record.to_json())

    def on_study_end(self, folder, metrics):
        self._call("close_runs")
        self._call("finish", folder, metrics)


def make_tracker(kind: str, uri: str | None, study: str, info: DataInfo | None, seed, run_name: str,
                 folder: Path) -> Tracker:
    """A tracker for one study run named ``run_name``; TensorBoard writes under ``folder``
    unless ``uri`` says where."""
    check_tracker(kind)
    if kind == "mlflow":
        return MLflowTracker(study, info, seed, uri, run_name)
    return TensorBoardTracker(uri, folder / TENSORBOARD)


def open_trackers(kinds, uri, study, info, folder, console=None) -> list[Live]:
    """The live trackers of a study run (``--track``) as listeners that cannot stop training;
    ``folder`` is the runs.RunFolder."""
    entries = {spec.name: planned_record(spec).to_json() for spec in study.runs}
    return [Live(make_tracker(k, uri, study.name, info, study.seed, folder.final.name, folder.path), k, entries, console)
            for k in kinds]


def track_run(kind: str, run_dir: str | Path, uri: str | None = None) -> str:
    """Log a finished run folder to a tracker by replaying it; returns where it went.

    ``uri``: the MLflow tracking URI (default ``sqlite:///mlflow.db`` in the current folder) or
    the TensorBoard log folder (default ``<run_dir>/tensorboard``)."""
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    from .datasets import DataInfo  # imports torch: only when a run folder is replayed

    info = DataInfo.from_json(metrics["dataset"]) if metrics.get("dataset") else None
    tracker = make_tracker(kind, uri, metrics.get("study") or run_dir.name, info, metrics.get("seed"),
                           run_dir.name, run_dir)
    for entry in metrics.get("runs") or []:
        if "history" not in entry:  # baselines (raw pixels) are not runs
            continue
        tracker.start_run(entry["name"], entry)
        for record in entry.get("history") or []:
            tracker.log_epoch(entry["name"], record)
        tracker.end_run(entry["name"], entry)
    tracker.close_runs()
    tracker.finish(run_dir, metrics)
    return tracker.where
