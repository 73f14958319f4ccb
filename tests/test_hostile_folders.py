"""Issue 21, items 11-12: run folders are not trusted. Every file a report, ``compare``,
``--resume`` or ``load_run`` reads is a regular file inside the folder, of bounded size, or one
sentence refuses it; the lock is never followed; records and resume states are checked."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aelab.cli import app
from aelab.errors import AelabError

cli = CliRunner()
SECRET = "TOP-SECRET-OUTSIDE-THE-FOLDER"

TINY = """
name = "tiny"
seed = 1
[data]
dataset = "mnist-5k"
limit = 200
[train]
epochs = 2
batch_size = 64
[[models]]
name = "a"
model = "stacked"
params = { hidden = [16, 4] }
[[steps]]
kind = "loss_curves"
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    (tmp / "tiny.toml").write_text(TINY)
    result = cli.invoke(app, ["run", str(tmp / "tiny.toml"), "--out", str(tmp / "out"), "--quiet"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return tmp / "out"


@pytest.fixture
def copy(tmp_path, finished) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(finished, folder)
    (tmp_path / "secret.txt").write_text(SECRET)
    return folder


def one_sentence(result, code=2) -> str:
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("aelab: "), result.stderr
    return lines[0]


def _link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


def _tamper(folder: Path, how: str) -> None:
    secret = folder.parent / "secret.txt"
    if how == "figure link":
        _link(folder / "figures" / "loss_curves.png", secret)
    elif how == "study link":
        _link(folder / "study.toml", secret)
    elif how == "log link":
        _link(folder / "console.log", secret)
    elif how == "figures folder link":
        outside = folder.parent / "elsewhere"
        outside.mkdir()
        shutil.copy(secret, outside / "x.png")
        _link(folder / "figures", outside)
    elif how == "figure fifo":
        os.mkfifo(folder / "figures" / "fifo.png")
    elif how == "huge log":
        with open(folder / "console.log", "wb") as f:
            f.truncate(1 << 30)  # sparse: 1 GB that takes no disk
    elif how in ("figure name climbs", "figure name absolute"):
        m = json.loads((folder / "metrics.json").read_text())
        m["figures"] = ["../../secret" if how == "figure name climbs" else str(secret.with_suffix(""))]
        (folder / "metrics.json").write_text(json.dumps(m))
        shutil.copy(secret, folder.parent / "secret.png")
        shutil.copy(secret, secret.with_suffix(".png"))


@pytest.mark.parametrize("how", ["figure link", "study link", "log link", "figures folder link", "figure fifo",
                                 "huge log", "figure name climbs", "figure name absolute"])
def test_a_report_reads_nothing_from_outside(copy, how):
    _tamper(copy, how)
    (copy / "report.html").unlink()
    result = cli.invoke(app, ["report", str(copy)])
    if result.exit_code == 0:  # a name that is not a file of figures/ is no figure: left out
        assert how.startswith("figure name")
    else:
        assert "Refusing to read" in one_sentence(result)
    page = (copy / "report.html").read_text() if (copy / "report.html").exists() else ""
    import base64

    assert SECRET not in page and base64.b64encode(SECRET.encode()).decode()[:20] not in page


def test_a_report_into_a_read_only_folder_is_one_sentence(copy, monkeypatch):
    import errno

    import aelab.report.html

    def denied(path, data):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(aelab.report.html, "atomic_write", denied)  # as a read-only folder does, even for root
    assert "Cannot write" in one_sentence(cli.invoke(app, ["report", str(copy)]))


def _incomplete(copy: Path) -> Path:
    """The finished copy made unfinished again (as if killed before the rename)."""
    folder = copy.with_name(copy.name + ".incomplete")
    copy.rename(folder)
    (folder / "resume.json").write_text(json.dumps({"study": "tiny", "source": "", "quick": False,
                                                    "data_dir": None, "started": "now"}))
    return folder


@pytest.mark.parametrize("kind", ["link", "dangling link", "folder", "fifo"])
def test_a_tampered_lock_is_refused_and_never_followed(copy, kind):
    folder = _incomplete(copy)
    target = copy.parent / "created-by-aelab"
    lock = folder / ".lock"
    if kind == "link":
        target.write_text("mine")
        lock.symlink_to(target)
    elif kind == "dangling link":
        lock.symlink_to(target)
    elif kind == "folder":
        lock.mkdir()
    else:
        os.mkfifo(lock)
    line = one_sentence(cli.invoke(app, ["run", "--resume", str(folder), "--quiet"]))
    assert "Cannot lock" in line and ".lock" in line
    assert (target.read_text() == "mine") if kind == "link" else not target.exists()


@pytest.mark.parametrize("change", ["history 5", "runs object", "status odd", "name list", "epochs bool",
                                    "deep", "dataset list", "summary number"])
def test_mistyped_or_deep_metrics_are_one_sentence_everywhere(copy, tmp_path, change):
    import aelab

    m = json.loads((copy / "metrics.json").read_text())
    run = m["runs"][0]
    if change == "history 5":
        run["history"] = 5
    elif change == "runs object":
        m["runs"] = {"a": 1}
    elif change == "status odd":
        run["status"] = ["completed"]
    elif change == "name list":
        run["name"] = ["a"]
    elif change == "epochs bool":
        run["epochs_run"] = True
    elif change == "deep":
        run["params"] = json.loads("[" * 500 + "]" * 500)
    elif change == "dataset list":
        m["dataset"]["distribution"] = [1]
    else:
        m["summary"] = [5]
    (copy / "metrics.json").write_text(json.dumps(m))
    for args in (["report", str(copy)], ["compare", str(copy), "--out", str(tmp_path / "cmp")]):
        assert "metrics.json" in one_sentence(cli.invoke(app, args))
    with pytest.raises(AelabError, match="metrics.json"):
        aelab.load_run(copy)
    folder = _incomplete(copy)
    assert "metrics.json" in one_sentence(cli.invoke(app, ["run", "--resume", str(folder), "--quiet"]))


def test_a_metrics_json_that_claims_every_run_finished_retrains_without_checkpoints(copy):
    folder = _incomplete(copy)
    shutil.rmtree(folder / "checkpoints")
    result = cli.invoke(app, ["run", "--resume", str(folder)])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "Run a trains again: its checkpoint is missing." in result.stdout
    assert (copy / "checkpoints" / "a.safetensors").is_file()


def _state(folder: Path, change) -> None:
    """A resume state for run a after epoch 1 (from a real fit), changed by ``change(state)``."""
    import torch

    from aelab.config import load_study
    from aelab.models import create_model
    from aelab.runs.states import resume_bytes
    from aelab.train import fit, snapshot

    spec = load_study(str(folder / "study.toml")).runs[0]
    model = create_model(spec.model, (1, 28, 28), seed=spec.seed, **spec.params)
    states = []

    class Keep:
        state_key = "keep"

        def __getattr__(self, name):
            return lambda *a, **k: {} if name == "state_dict" else None

        def on_epoch_end(self, state, record):
            states.append(snapshot(state))

    fit(model, {"train": torch.rand(64, 1, 28, 28)}, spec.train, [Keep()])
    state = states[0]
    change(state)
    (folder / "resume").mkdir(exist_ok=True)
    (folder / "resume" / "a.safetensors").write_bytes(resume_bytes(state))


@pytest.mark.parametrize("change", ["epoch 1e9", "negative epoch", "history short", "wrong shape"])
def test_a_resume_state_that_does_not_fit_restarts_its_run(copy, change):
    import torch

    folder = _incomplete(copy)
    m = json.loads((folder / "metrics.json").read_text())
    m["runs"] = []
    (folder / "metrics.json").write_text(json.dumps(m))

    def tamper(state):
        if change == "epoch 1e9":
            state.epoch = 10**9
        elif change == "negative epoch":
            state.epoch = -4
        elif change == "history short":
            state.history.epochs = []
        else:
            key = next(iter(state.model))
            state.model[key] = torch.zeros(3, 3)

    _state(folder, tamper)
    result = cli.invoke(app, ["run", "--resume", str(folder)])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "Run a starts again from scratch" in result.stdout
    run = json.loads((copy / "metrics.json").read_text())["runs"][0]
    assert run["status"] == "completed" and run["epochs_run"] == 2 and len(run["history"]) == 2


# ---------------------------------------------------------------- the in-suite fuzzer

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=False))
def test_mutated_run_folders_are_refused_in_one_sentence_and_read_nothing_outside(finished, tmp_path_factory, rnd):
    """A real finished folder, mutated (tests/hostile_folders.py), given to report, compare,
    load_run or --resume: exit 0 or one sentence, nothing written outside, no secret in a page,
    no traceback, done within the time bound."""
    from tests.hostile_folders import attack

    cls, what = attack(finished, tmp_path_factory.mktemp("attack"), rnd, seconds=120)
    assert cls in ("ok", "error"), (cls, what)
