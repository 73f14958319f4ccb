"""A search through the engine (aelab.search.engine): `aelab run` of a tiny search, a search
whose trials all fail, a search killed and resumed, --jobs and a Ray cluster of two nodes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from aelab.config import load_study
from aelab.runner import run_study

STUDY = """
name = "tiny-search"
seed = 3
[data]
dataset = "digits"
[train]
epochs = {epochs}
batch_size = {{ choice = [32, 64] }}
learning_rate = {{ log_uniform = [1e-4, 1e-2] }}
[[models]]
name = "sae"
model = "stacked"
params = {{ hidden = [32, {{ int = [4, 16] }}] }}
[[steps]]
kind = "loss_curves"
[search]
trials = {trials}
sampler = "{sampler}"
{extra}
"""
PRUNED = 'pruner = "median"\nmedian = { n_startup_trials = 2, n_warmup_steps = 2 }\ntpe = { n_startup_trials = 2 }'


def study_file(tmp_path, name="s.toml", epochs=3, trials=4, sampler="tpe", extra=PRUNED + "\nconfirm_seeds = [1, 2]"):
    path = tmp_path / name
    path.write_text(STUDY.format(epochs=epochs, trials=trials, sampler=sampler, extra=extra))
    return path


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "aelab.cli", "run", *map(str, args), "--threads", "1"],
                          capture_output=True, text=True, timeout=timeout)


def metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def trials(folder) -> list[tuple]:
    """Each trial's run, state, epochs, sampled settings and value, from the folder's search."""
    return [(t["run"], t["state"], t["epochs"], t["params"], t["value"]) for t in metrics(folder)["search"]["trials"]]


def assert_same_trials(a, b):
    ta, tb = trials(a), trials(b)
    assert [t[:3] for t in ta] == [t[:3] for t in tb]
    for x, y in zip(ta, tb, strict=True):
        assert x[3] == pytest.approx(y[3], rel=1e-9) and x[4] == pytest.approx(y[4], abs=1e-6), (x, y)


def test_aelab_run_of_a_search_writes_the_folder_and_the_report(tmp_path):
    proc = cli(study_file(tmp_path), "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "run"
    names = [r["name"] for r in metrics(out)["runs"]]
    assert names == ["trial-000", "trial-001", "trial-002", "trial-003", "confirm-seed1", "confirm-seed2"]
    assert (out / "search.journal").is_file()
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"search-history.png", "search-parallel.png", "loss_curves.png"} <= figures
    for r in metrics(out)["runs"]:  # a pruned trial keeps its history, not its model
        assert (out / "checkpoints" / f"{r['name']}.safetensors").is_file() == (r["status"] != "pruned")
        assert len(r["history"]) == r["epochs_run"]
    search = metrics(out)["search"]
    assert search["confirmation"]["metrics"]["val_loss"]["n"] == 2
    assert search["lines"][1].startswith("Best: trial-")
    html = (out / "report.html").read_text()
    for part in ('id="search"', 'id="search-trials"', 'id="fig-search-history"', 'id="search-confirmation"'):
        assert part in html
    assert html.count("<tr>") >= 4 + 2
    assert "Best: trial-" in proc.stdout


def test_a_search_whose_every_trial_fails_exits_1_with_one_sentence(tmp_path, monkeypatch):
    """Every trial raises (as an out-of-memory error would): the search stops after
    max_failures and has no best configuration; `aelab run` says so in one sentence."""
    from typer.testing import CliRunner

    import aelab.train
    from aelab.cli import app

    def oom(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(aelab.train, "fit", oom)
    path = study_file(tmp_path, trials=5, extra="max_failures = 1\nconfirm_seeds = [1, 2]")
    ran = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "run"), "--quiet"])
    lines = ran.stderr.strip().splitlines()
    assert ran.exit_code == 1 and len(lines) == 1, ran.stderr
    assert "no trial of the search completed (2 fail)" in lines[0]
    runs = metrics(tmp_path / "run.incomplete")["runs"]
    assert [(r["status"], r["reason"]) for r in runs] == [("failed", "MemoryError: out of memory")] * 2


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    return run_study(load_study(str(study_file(tmp, epochs=12, trials=5))), out=tmp / "run", quiet=True, threads=1)


def test_a_search_killed_mid_trial_resumes_to_the_same_trials_and_values(tmp_path, uninterrupted):
    path = study_file(tmp_path, epochs=12, trials=5)
    part = tmp_path / "run.incomplete"
    proc = subprocess.Popen([sys.executable, "-m", "aelab.cli", "run", str(path), "--out", str(tmp_path / "run"),
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (part / "resume" / "trial-003.safetensors").is_file():
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert [r["name"] for r in metrics(part)["runs"]] == ["trial-000", "trial-001", "trial-002"]
    resumed = cli("--resume", part)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_trials(uninterrupted, tmp_path / "run")
    assert [r["name"] for r in metrics(tmp_path / "run")["runs"]][-2:] == ["confirm-seed1", "confirm-seed2"]


def random_search(tmp_path, **options):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = study_file(tmp_path, trials=4, sampler="random", extra="")
    return run_study(load_study(str(path)), out=tmp_path / options.get("executor", "local"), quiet=True,
                     threads=1, **options)


def test_jobs_2_gives_the_serial_trials(tmp_path):
    assert_same_trials(random_search(tmp_path / "serial"), random_search(tmp_path / "jobs", jobs=2))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_ray_nodes(tmp_path):
    """A head and a second node on this machine, one CPU each, every process in its own
    process group (killed at the end: no `ray stop`, which would stop others' Ray too)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port()

    def common():  # each node its own agent ports
        return ["--num-cpus", "1", "--block", "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
                *(x for flag in ("--dashboard-agent-listen-port", "--runtime-env-agent-port", "--metrics-export-port")
                  for x in (flag, str(_free_port())))]

    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", "--temp-dir", temp, "--ray-client-server-port", str(_free_port()), *common()]
    procs = [subprocess.Popen(head, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        _wait_for_nodes(env, port, 1)
        procs.append(subprocess.Popen([ray_bin, "start", "--address", f"127.0.0.1:{port}", *common()], env=env,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for_nodes(env, port, 2)
        yield port, env
    finally:
        for p in reversed(procs):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                    p.wait(timeout=15)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_nodes(env, port, n, timeout=120):
    """Until the cluster at ``port`` has ``n`` live nodes (each probe a fresh driver, bounded)."""
    code = (f"import ray; ray.init(address='127.0.0.1:{port}', log_to_driver=False); "
            "print(sum(x['Alive'] for x in ray.nodes()))")
    deadline, why = time.time() + timeout, ""
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=45)
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            why = out.stderr.strip()[-300:] or f"{out.stdout.strip()} nodes"
        except (OSError, subprocess.TimeoutExpired) as err:
            why = f"{type(err).__name__}: {err}"
        time.sleep(1)
    pytest.fail(f"Ray did not start {n} node(s) on port {port}: {why}")


def test_a_search_on_two_ray_nodes_trains_on_both_with_the_local_numbers(tmp_path, two_ray_nodes, monkeypatch):
    port, env = two_ray_nodes
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    local = random_search(tmp_path / "local")
    # The Ray search as a user runs it: the CLI in a fresh process. In this process an earlier
    # test's local Ray may have left Ray's driver state (its node address) behind.
    (tmp_path / "ray").mkdir()
    path = study_file(tmp_path / "ray", trials=4, sampler="random", extra="")
    out = tmp_path / "ray" / "run"
    done = subprocess.run([sys.executable, "-m", "aelab.cli", "run", str(path), "--out", str(out), "--quiet",
                           "--threads", "1", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_trials(local, out)
    nodes = {r["ray_worker"].split()[0] for r in metrics(out)["runs"]}
    assert len(nodes) == 2, nodes
