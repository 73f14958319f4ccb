"""Issue 21, item 13: ``--jobs`` worker processes die with the study, and a lost worker is
noticed. Real processes and signals, each bounded by a timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and prctl: Linux")

SLOW = """
name = "slow"
seed = 1
[data]
dataset = "mnist-5k"
limit = 1000
[train]
epochs = 30
batch_size = 16
[[models]]
name = "a"
model = "stacked"
params = { hidden = [64, 8] }
[[models]]
name = "b"
model = "stacked"
params = { hidden = [32, 8] }
[[models]]
name = "c"
model = "stacked"
params = { hidden = [16, 8] }
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path, list[psutil.Process]]:
    """``aelab run --jobs 2`` of a slow study, once its workers are training (a state saved)."""
    (tmp_path / "slow.toml").write_text(SLOW)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "aelab.cli", "run", str(tmp_path / "slow.toml"), "--out",
                             str(out), "--jobs", "2", "--quiet"], env=env, stderr=subprocess.PIPE, text=True)
    states, deadline = tmp_path / "out.incomplete" / "resume", time.monotonic() + 120
    while not (states.is_dir() and any(states.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.2)
    return proc, out, psutil.Process(proc.pid).children(recursive=True)


def test_killing_the_parent_kills_its_workers(tmp_path):
    proc, _, children = _start(tmp_path)
    assert len(children) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, [p.cmdline()[-2:] for p in alive]


def test_a_killed_worker_fails_its_run_and_the_study_goes_on(tmp_path):
    proc, out, children = _start(tmp_path)
    workers = [p for p in children if "resource_tracker" not in " ".join(p.cmdline())]
    os.kill(workers[0].pid, signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the study waited forever for a dead worker")
    assert proc.returncode == 0, err
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    failed = [r for r in runs if r["status"] == "failed"]
    assert len(failed) == 1 and "worker process died (killed by signal SIGKILL)" in failed[0]["reason"]
    assert sum(r["status"] == "completed" and r["epochs_run"] == 30 for r in runs) == 2
