"""Executors: every registered one trains a study to the same records; events reach listeners in order."""

from __future__ import annotations

import importlib.util
import json

import pytest

from aelab.config import load_study
from aelab.errors import AelabError, ConfigError
from aelab.executors import Task, create_executor, train_run
from aelab.listeners import Listeners
from aelab.registry import EXECUTORS
from aelab.runner import run_study

from .test_listeners import Recorder
from .test_runner import assert_same_results, runs_of, study_file

OPTIONS = {"local": {}, "processes": {"jobs": 2}, "ray": {}}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    return run_study(load_study(str(study_file(tmp, b_epochs=3))), out=tmp / "run", quiet=True, threads=1)


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_every_executor_trains_the_same_records(tmp_path, local_run, name):
    if name == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("the ray extra is not installed")
    out = run_study(load_study(str(study_file(tmp_path, b_epochs=3))), out=tmp_path / name, quiet=True,
                    executor=name, threads=1, **OPTIONS[name])
    assert_same_results(runs_of(local_run), runs_of(out))
    env = json.loads((out / "metrics.json").read_text())["environment"]
    assert env["executor"] == name and env["threads per run"] == 1


def test_jobs_hand_local_to_processes_and_are_capped_at_the_runs():
    specs = load_study("quickstart", quick=True).runs
    assert type(create_executor("local", 2, 1, None, specs)).name == "processes"
    assert create_executor("local", 99, 1, None, specs).jobs == len(specs)
    assert type(create_executor("local", 1, 1, None, specs)).name == "local"


def test_an_unknown_executor_is_one_sentence():
    with pytest.raises(ConfigError) as err:
        create_executor("spark")
    assert str(err.value) == "--executor: unknown executor 'spark'; choose one of: local, processes, ray."


def test_without_ray_nothing_is_written(tmp_path, monkeypatch):
    """The check runs before any folder exists (it used to leave an empty .incomplete)."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AelabError, match="needs Ray"):
        run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "run", quiet=True, executor="ray")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_the_unit_of_work_emits_the_protocol_in_order(tmp_path):
    from aelab.datasets import prepare

    study = load_study(str(study_file(tmp_path, b_epochs=2)))
    splits, _ = prepare(study.data, study.seed)
    spec = study.runs[1]  # b: 2 epochs, no early stop that soon
    rec = Recorder()
    train_run(Task((spec,)), splits, Listeners([rec]))
    assert rec.events == [("start", "b", 2, 0), ("state", "b", "bytes"), ("epoch", "b", 1),
                          ("state", "b", "bytes"), ("epoch", "b", 2), ("end", "b", "completed", True)]
