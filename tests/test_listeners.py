"""Listeners: every hook has a no-op default, events reach each listener in order, and a
user's listener passed to run_study sees the whole study."""

from __future__ import annotations

import pytest

from aelab.config import load_study
from aelab.errors import ConfigError
from aelab.listeners import Listener, Listeners, check_listeners
from aelab.runner import run_study

from .test_runner import runs_of, study_file


class Recorder(Listener):
    def __init__(self):
        self.events = []

    def on_run_start(self, name, epochs, done):
        self.events.append(("start", name, epochs, done))

    def on_state(self, name, state):
        self.events.append(("state", name, type(state).__name__))

    def on_epoch(self, name, record):
        self.events.append(("epoch", name, record["epoch"]))

    def on_run_end(self, name, record, checkpoint):
        self.events.append(("end", name, record.status, checkpoint is not None))

    def on_study_end(self, folder, metrics):
        self.events.append(("study", folder.name, metrics["complete"]))


def test_every_hook_is_a_no_op_by_default():
    hooks = sorted(m for m in vars(Listener) if m.startswith("on_"))
    assert hooks == ["on_epoch", "on_run_end", "on_run_start", "on_state", "on_study_end"]
    listeners = Listeners([Listener()])
    for hook in hooks:
        listeners(hook, *([None] * (getattr(Listener, hook).__code__.co_argcount - 1)))


def test_events_go_to_each_listener_in_order():
    seen = []

    class Named(Listener):
        def __init__(self, tag):
            self.tag = tag

        def on_epoch(self, name, record):
            seen.append((self.tag, name, record["epoch"]))

    Listeners([Named(1), Named(2)])("on_epoch", "a", {"epoch": 3})
    assert seen == [(1, "a", 3), (2, "a", 3)]


def test_only_listeners_are_accepted():
    assert check_listeners(None) == []
    with pytest.raises(ConfigError, match="listeners: function is not an aelab.Listener"):
        check_listeners([lambda *a: None])


def test_a_user_listener_sees_every_epoch_of_every_run(tmp_path):
    rec = Recorder()
    out = run_study(load_study(str(study_file(tmp_path, b_epochs=3))), out=tmp_path / "run", quiet=True,
                    threads=1, listeners=[rec])
    epochs = [(e[1], e[2]) for e in rec.events if e[0] == "epoch"]
    assert epochs == [(r["name"], h["epoch"]) for r in runs_of(out) for h in r["history"]]
    assert [e[1] for e in rec.events if e[0] == "end"] == ["a", "b"]
    assert rec.events[-1] == ("study", "run.incomplete", True) and out.name == "run"


def test_a_listener_that_is_not_one_is_refused_before_any_folder(tmp_path):
    with pytest.raises(ConfigError, match="is not an aelab.Listener"):
        run_study(load_study(str(study_file(tmp_path))), out=tmp_path / "run", quiet=True, listeners=[print])
    assert not (tmp_path / "run.incomplete").exists()
