"""Trackers against the real MLflow and TensorBoard libraries, offline, on a small run folder."""

import json

import pytest

from aelab.errors import ConfigError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real two-model, two-epoch study run on 300 digits (a few seconds)."""
    from aelab.config import load_study
    from aelab.runner import run_study

    study = load_study("quickstart", quick=True, overrides=[
        "data.limit=300", "train.batch_size=64", "steps=[{kind='loss_curves'}]"])
    return run_study(study, out=tmp_path_factory.mktemp("r") / "run", quiet=True)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")


def test_unknown_or_missing_tracker_is_one_sentence(monkeypatch):
    from aelab import track

    with pytest.raises(ConfigError, match="choose one of: mlflow, tensorboard"):
        track.check_tracker("wandb")
    monkeypatch.setattr(track.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'aelab\[mlflow\]'"):
        track.check_tracker("mlflow")


def test_cli_refuses_a_missing_tracker_before_training(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from aelab import track
    from aelab.cli import app

    monkeypatch.setattr(track.importlib.util, "find_spec", lambda name: None)
    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["run", "quickstart", "--quick", "--track", "tensorboard",
                                      "--out", str(out)])
    assert result.exit_code == 2 and "aelab[tensorboard]" in result.output
    assert not out.exists()


def test_tensorboard_event_files(run_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from aelab.track import track_run

    metrics = json.loads((run_dir / "metrics.json").read_text())
    logdir = track_run("tensorboard", run_dir, str(tmp_path / "tb"))
    for entry in metrics["runs"]:
        acc = EventAccumulator(f"{logdir}/{entry['name']}")
        acc.Reload()
        assert "train_loss" in acc.Tags()["scalars"] and "val_loss" in acc.Tags()["scalars"]
        values = [(e.step, e.value) for e in acc.Scalars("val_loss")]
        expected = [(h["epoch"], h["val_loss"]) for h in entry["history"]]
        assert [s for s, _ in values] == [s for s, _ in expected]
        assert [v for _, v in values] == pytest.approx([v for _, v in expected], rel=1e-6)
    study = EventAccumulator(f"{logdir}/study")
    study.Reload()
    assert set(study.Tags()["images"]) == {p.stem for p in (run_dir / "figures").glob("*.png")}


def test_mlflow_params_metrics_and_report(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    from aelab.track import track_run

    monkeypatch.chdir(tmp_path)  # the default artifact store is ./mlruns
    metrics = json.loads((run_dir / "metrics.json").read_text())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert track_run("mlflow", run_dir, uri) == uri
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(metrics["study"])
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    parent = runs.pop(run_dir.name)
    assert parent.data.params["seed"] == str(metrics["seed"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "metrics.json", "study.toml", "figures"} <= artifacts
    assert set(runs) == {e["name"] for e in metrics["runs"]}
    for entry in metrics["runs"]:
        run = runs[entry["name"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["batch_size"] == str(entry["batch_size"])
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss"))
        assert [s for s, _ in history] == [h["epoch"] for h in entry["history"]]
        assert [v for _, v in history] == pytest.approx([h["val_loss"] for h in entry["history"]])
        assert run.data.metrics["final_test_loss"] == pytest.approx(entry["test_loss"])


def test_trackers_receive_every_epoch_while_the_study_runs(tmp_path, monkeypatch):
    """Live: an epoch reaches the tracker before its run has finished (no checkpoint yet)."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from aelab import track
    from aelab.config import load_study
    from aelab.runner import run_study

    seen = []
    real = track.TensorBoardTracker.log_epoch

    def log_epoch(self, name, record):
        done = (tmp_path / "run.incomplete" / "checkpoints" / f"{name}.safetensors").exists()
        seen.append((name, record["epoch"], done))
        real(self, name, record)

    monkeypatch.setattr(track.TensorBoardTracker, "log_epoch", log_epoch)
    study = load_study("quickstart", quick=True, overrides=["data.limit=300", "steps=[]"])
    out = run_study(study, out=tmp_path / "run", quiet=True, track=("tensorboard",))
    # Every epoch of every run, each run's in order (runs stacked together interleave theirs).
    assert sorted((n, e) for n, e, _ in seen) == sorted((r.name, e) for r in study.runs for e in (1, 2))
    assert [e for n, e, _ in seen if n == "stacked-bs32"] == [1, 2]
    assert not any(done for _, _, done in seen)
    assert (out / "tensorboard" / "stacked-bs32").is_dir() and (out / "tensorboard" / "study").is_dir()
