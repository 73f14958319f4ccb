"""Experiment trackers (optional extras): MLflow and TensorBoard.

A tracker records a finished run folder: settings, every epoch of every run, the final results,
the figures and the report. Logging after the study, from the files it wrote, means a tracker
problem can never cost a training run, and any old run folder can be logged later the same way.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from .errors import ConfigError
from .runs import load_run

EXTRAS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # tracker -> module it needs


def check_tracker(kind: str) -> None:
    """Fail before training, in one sentence, if a tracker is unknown or its extra is missing."""
    if kind not in EXTRAS:
        raise ConfigError(f"--track {kind!r} is not a tracker; choose one of: {', '.join(EXTRAS)}.")
    if importlib.util.find_spec(EXTRAS[kind]) is None:
        raise ConfigError(f"--track {kind} needs the {kind} extra; install it with "
                          f"pip install 'aelab[{kind}]'.")


def track_run(kind: str, run_dir: str | Path, uri: str | None = None) -> str:
    """Log a finished run folder to a tracker; returns where it went (a URI or a folder).

    ``uri``: the MLflow tracking URI (default ``sqlite:///mlflow.db`` in the current folder) or
    the TensorBoard log folder (default ``<run_dir>/tensorboard``).
    """
    check_tracker(kind)
    run_dir = Path(run_dir)
    metrics = load_run(run_dir)
    return (_mlflow if kind == "mlflow" else _tensorboard)(run_dir, metrics, uri)


def _numbers(d: dict) -> dict[str, float]:
    """The finite numeric values of a dict (bools and nested values left out)."""
    return {k: float(v) for k, v in d.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _run_params(entry: dict) -> dict[str, str]:
    params = {k: entry.get(k) for k in ("model", "batch_size", "optimizer", "learning_rate")}
    params.update({f"params.{k}": v for k, v in (entry.get("params") or {}).items()})
    return {k: str(v) for k, v in params.items()}


def _mlflow(run_dir: Path, metrics: dict, uri: str | None) -> str:
    import time

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = uri or "sqlite:///mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    study = metrics.get("study") or run_dir.name
    exp = client.get_experiment_by_name(study)
    exp_id = exp.experiment_id if exp else client.create_experiment(study)
    now = int(time.time() * 1000)
    # One parent run per study run folder, one child per trained model run (MLflow's nesting tag).
    parent = client.create_run(exp_id, run_name=run_dir.name, tags={"aelab.study": study})
    data = metrics.get("dataset") or {}
    client.log_batch(parent.info.run_id, params=[
        Param("seed", str(metrics.get("seed"))), Param("dataset", str(data.get("dataset"))),
        Param("n_images", str(data.get("n_images"))), Param("run_dir", str(run_dir.resolve()))])
    for entry in metrics.get("runs") or []:
        child = client.create_run(exp_id, run_name=entry.get("name"),
                                  tags={"mlflow.parentRunId": parent.info.run_id, "aelab.study": study,
                                        "aelab.status": str(entry.get("status", ""))})
        series = [Metric(k, v, now, int(epoch["epoch"]))
                  for epoch in entry.get("history") or []
                  for k, v in _numbers(epoch).items() if k != "epoch"]
        finals = [Metric(f"final_{k}", v, now, 0) for k, v in _numbers(entry).items()]
        params = [Param(k, v) for k, v in _run_params(entry).items()]
        # log_batch takes at most 1000 metrics per call.
        for i in range(0, max(len(series) + len(finals), 1), 1000):
            client.log_batch(child.info.run_id, metrics=(series + finals)[i:i + 1000],
                             params=params if i == 0 else [])
        client.set_terminated(child.info.run_id, "FAILED" if entry.get("status") == "failed" else "FINISHED")
    for name in ("report.html", "metrics.json", "study.toml", "history.csv"):
        if (run_dir / name).is_file():
            client.log_artifact(parent.info.run_id, str(run_dir / name))
    if (run_dir / "figures").is_dir():
        client.log_artifacts(parent.info.run_id, str(run_dir / "figures"), "figures")
    client.set_terminated(parent.info.run_id)
    return uri


def _tensorboard(run_dir: Path, metrics: dict, uri: str | None) -> str:
    from matplotlib.image import imread
    from torch.utils.tensorboard import SummaryWriter

    logdir = Path(uri) if uri else run_dir / "tensorboard"
    for entry in metrics.get("runs") or []:
        if not entry.get("history"):
            continue
        with SummaryWriter(str(logdir / entry["name"])) as w:
            for epoch in entry["history"]:
                for k, v in _numbers(epoch).items():
                    if k != "epoch":
                        w.add_scalar(k, v, int(epoch["epoch"]))
            w.add_text("settings", json.dumps(_run_params(entry), indent=1))
    with SummaryWriter(str(logdir / "study")) as w:
        w.add_text("summary", "\n\n".join(metrics.get("summary") or []) or "(none)")
        for png in sorted((run_dir / "figures").glob("*.png")):
            w.add_image(png.stem, imread(png)[..., :3], dataformats="HWC")
    return str(logdir)
