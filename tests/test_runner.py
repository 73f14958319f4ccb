"""The runner: the run folder contract, durability, resume after any interruption, --jobs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from aelab.config import load_study
from aelab.errors import AelabError, ConfigError
from aelab.listeners import Listener
from aelab.runner import StudyFailed, resume_study, run_study

TINY = """
name = "tiny"
seed = 3
[data]
dataset = "mnist-5k"
limit = 400
[train]
epochs = 4
batch_size = 64
early_stopping = {{ monitor = "val_loss", patience = 2, min_delta = 1e-3 }}
[[models]]
name = "a"
model = "stacked"
params = {{ hidden = [32, 8] }}
[[models]]
name = "b"
model = "vae"
params = {{ hidden = 32 }}
train = {{ epochs = {b_epochs} }}
[[steps]]
kind = "loss_curves"
"""


def study_file(tmp_path, b_epochs=6, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(TINY.format(b_epochs=b_epochs))
    return path


def runs_of(folder):
    return json.loads((folder / "metrics.json").read_text(), parse_constant=_reject)["runs"]


def _reject(name):
    raise ValueError(f"metrics.json is not strict JSON: it holds {name}")


def assert_same_results(a, b):
    """Equal statuses and epochs, every loss of every epoch equal to 1e-6."""
    assert [r["name"] for r in a] == [r["name"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert (ra["status"], ra["epochs_run"], ra["best_epoch"]) == (rb["status"], rb["epochs_run"], rb["best_epoch"])
        for ea, eb in zip(ra["history"], rb["history"], strict=True):
            for key in ("train_loss", "val_loss"):
                assert ea[key] == pytest.approx(eb[key], abs=1e-6), (ra["name"], ea["epoch"], key)
        assert ra["test_loss"] == pytest.approx(rb["test_loss"], abs=1e-6)


class InterruptAfter(Listener):
    """Ctrl-C as the runner records ``epoch`` of ``run`` (the listeners before it saw the epoch)."""

    def __init__(self, run: str, epoch: int):
        self.run, self.epoch = run, epoch

    def on_epoch(self, name, record):
        if name == self.run and record["epoch"] == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The tiny study run once without interruption."""
    tmp = tmp_path_factory.mktemp("baseline")
    out = run_study(load_study(str(study_file(tmp))), out=tmp / "run", quiet=True)
    return out


def test_run_study_writes_a_complete_folder(baseline):
    out = baseline
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"study.toml", "console.log", "metrics.json", "history.csv", "report.html", "figures/loss_curves.png",
            "checkpoints/a.safetensors", "checkpoints/b.safetensors"} <= files
    assert not any(f.startswith(("resume", ".lock")) for f in files)  # resume files go at the end
    m = json.loads((out / "metrics.json").read_text())
    assert m["study"] == "tiny" and m["complete"] is True and m["dataset"]["splits"] == {"train": 286, "val": 57, "test": 57}
    run = m["runs"][0]
    for key in ("name", "model", "batch_size", "epochs_run", "stopped_early", "status", "train_loss",
                "val_loss", "test_loss", "seconds", "seconds_per_epoch", "peak_rss_mb", "history"):
        assert key in run, key
    log = (out / "console.log").read_text()
    assert "Results" in log and "a  epoch 1/4  loss " in log  # recorded even with quiet=True
    assert not (out.parent / "run.incomplete").exists()
    with pytest.raises(AelabError, match="exists already"):
        run_study(load_study(str(out / "study.toml")), out=out, quiet=True)


def test_same_seed_same_numbers(tmp_path, baseline):
    again = run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "again", quiet=True)
    assert_same_results(runs_of(baseline), runs_of(again))


def test_model_that_cannot_be_built_stops_the_study_before_any_folder(tmp_path):
    text = TINY.format(b_epochs=1).replace('model = "vae"\nparams = { hidden = 32 }', 'model = "conv"')
    (tmp_path / "s.toml").write_text(text.replace('dataset = "mnist-5k"', 'dataset = "digits"'))
    with pytest.raises(ConfigError, match=r"models\[1\] \(conv\) cannot be built for 1×8×8 images"):
        run_study(load_study(str(tmp_path / "s.toml")), out=tmp_path / "run", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_a_failed_run_does_not_stop_the_study_but_all_failed_is_a_failure(tmp_path, monkeypatch):
    import aelab.train

    real = aelab.train.fit

    def fit(model, data, cfg, callbacks=(), **kw):
        if model.spec["model"] == "vae":
            raise RuntimeError("boom")
        return real(model, data, cfg, callbacks, **kw)

    monkeypatch.setattr(aelab.train, "fit", fit)
    out = run_study(load_study(str(study_file(tmp_path, b_epochs=1))), out=tmp_path / "run", quiet=True)
    runs = runs_of(out)
    assert runs[0]["status"] in ("completed", "stopped_early")
    assert runs[1]["status"] == "failed" and runs[1]["reason"] == "RuntimeError: boom"

    def broken(*a, **k):
        raise RuntimeError("no")

    monkeypatch.setattr(aelab.train, "fit", broken)
    with pytest.raises(StudyFailed, match="all 2 runs failed"):
        run_study(load_study(str(study_file(tmp_path, b_epochs=1))), out=tmp_path / "bad", quiet=True)
    assert (tmp_path / "bad.incomplete" / "metrics.json").is_file() and not (tmp_path / "bad").exists()


def test_divergence_is_strict_json_with_null(tmp_path):
    text = TINY.format(b_epochs=1).replace('params = { hidden = [32, 8] }',
                                           'params = { hidden = [32, 8], activation = "linear", code_activation = "linear", output = "linear", loss = "mse" }\n'
                                           'train = { optimizer = "sgd", learning_rate = 100.0 }')
    (tmp_path / "s.toml").write_text(text)
    out = run_study(load_study(str(tmp_path / "s.toml")), out=tmp_path / "run", quiet=True)
    a = runs_of(out)[0]  # parse_constant rejects NaN and Infinity
    assert a["status"] == "diverged" and a["test_loss"] is None and "became" in a["reason"]


def test_an_interrupted_study_keeps_its_finished_runs_and_resumes_to_the_same_numbers(tmp_path, baseline):
    """Ctrl-C (or SIGTERM) in the second run, after its second epoch: the folder is visible as
    .incomplete, holds the first run complete and the second's resume state; resuming gives
    the numbers of the uninterrupted run."""
    with pytest.raises(KeyboardInterrupt) as info:
        run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "run", quiet=True,
                  listeners=[InterruptAfter("b", 2)])
    part = tmp_path / "run.incomplete"
    assert info.value.run_folder == part
    assert [r["name"] for r in runs_of(part)] == ["a"]
    assert (part / "checkpoints" / "a.safetensors").is_file() and (part / "resume" / "b.safetensors").is_file()
    assert {"study.toml", "console.log", "history.csv"} <= {p.name for p in part.iterdir()}
    with pytest.raises(AelabError, match="holds an unfinished run.*--resume"):
        run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "run", quiet=True)

    out = resume_study(part, quiet=True)
    assert out == tmp_path / "run" and not part.exists()
    assert_same_results(runs_of(baseline), runs_of(out))
    a, b = (baseline / "console.log").read_text(), (out / "console.log").read_text()
    assert a.count("epoch") == b.count("epoch")  # every epoch of both runs, in order, once


def test_a_second_process_cannot_write_the_same_folder(tmp_path):
    from aelab.runs import RunFolder

    first = RunFolder.create(tmp_path / "x")
    (first.path / "study.toml").write_text("")
    (first.path / "resume.json").write_text("{}")
    with pytest.raises(AelabError, match="Another aelab process is writing"):
        RunFolder.open(first.path)
    first.release()


def test_jobs_give_the_serial_results(tmp_path, baseline):
    out = run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "par", quiet=True, jobs=2, threads=1)
    assert_same_results(runs_of(baseline), runs_of(out))
    def epoch_lines(folder):  # console.log's training part, timings left out
        text = (folder / "console.log").read_text()
        return [re.sub(r"[\d.]+ s$", "", line) for line in text.splitlines() if re.match(r"[ab]( |:)", line)]

    assert epoch_lines(baseline) == epoch_lines(out) and len(epoch_lines(out)) >= 4


def test_non_terminal_output_has_one_line_per_epoch(tmp_path):
    """Redirected to a file, every epoch is one plain line as it finishes (Keras verbose=2)."""
    path = study_file(tmp_path, b_epochs=3)
    proc = subprocess.run([sys.executable, "-m", "aelab.cli", "run", str(path), "--out", str(tmp_path / "r"),
                           "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if " epoch " in line]
    assert [line.split()[0:3] for line in lines if line.startswith("b ")] == [["b", "epoch", "1/3"], ["b", "epoch", "2/3"], ["b", "epoch", "3/3"]]
    assert "\x1b[" not in proc.stdout  # no progress-bar escape codes in a log file


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_process_resumes_to_the_uninterrupted_numbers(tmp_path, baseline, sig):
    """The real thing: a subprocess killed a few epochs into the second run, then resumed."""
    path = study_file(tmp_path, b_epochs=6)
    part = tmp_path / "run.incomplete"
    cmd = [sys.executable, "-m", "aelab.cli", "run", str(path), "--out", str(tmp_path / "run"), "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (part / "resume" / "b.safetensors").is_file():
        time.sleep(0.005)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    if sig != signal.SIGKILL:
        assert f"aelab run --resume {part}" in err and len(err.strip().splitlines()) == 1
    assert [r["name"] for r in runs_of(part)] == ["a"]
    resumed = subprocess.run([sys.executable, "-m", "aelab.cli", "run", "--resume", str(part), "--threads", "1"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_results(runs_of(baseline), runs_of(tmp_path / "run"))


def test_ray_executor_gives_the_same_folder_and_numbers(tmp_path, baseline):
    """A real local Ray: every run a task, the data in the object store once."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "ray", quiet=True,
                    executor="ray", threads=1)
    assert_same_results(runs_of(baseline), runs_of(out))
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"a.safetensors", "b.safetensors"}


def test_without_ray_the_executor_is_one_sentence(monkeypatch):
    import importlib.util

    from aelab.executors import create_executor

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AelabError, match=r"pip install -e '\.\[ray\]'"):
        create_executor("ray")


def test_jobs_auto_shares_the_cores():
    from types import SimpleNamespace

    from aelab.executors import default_jobs

    def specs(*batches):
        return [SimpleNamespace(train=SimpleNamespace(batch_size=b)) for b in batches]

    assert default_jobs(specs(32, 256, 32, 256), cores=2) == (2, 1)
    assert default_jobs(specs(32), cores=8) == (1, 8)  # one run: all cores to it
    jobs, threads = default_jobs(specs(*[32] * 10), cores=8)
    assert jobs * threads <= 8 and jobs > 1


def test_resume_works_with_jobs(tmp_path, baseline):
    """Interrupted while two worker processes train, resumed with --jobs 2: the same numbers."""
    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "run", quiet=True, jobs=2, threads=1,
                  listeners=[InterruptAfter("b", 3)])
    part = tmp_path / "run.incomplete"
    assert (part / "resume" / "b.safetensors").is_file()
    out = resume_study(part, quiet=True, jobs=2, threads=1)
    assert_same_results(runs_of(baseline), runs_of(out))
