"""The run folder: its layout names every file a study writes, writes are atomic, a lock keeps
a second writer out, and a target is checked before anything is written."""

from __future__ import annotations

import os

import pytest

from aelab.config import load_study
from aelab.errors import AelabError
from aelab.runner import run_study
from aelab.runs import folder as layout
from aelab.runs.folder import RunFolder, atomic_write

from .test_runner import InterruptAfter, study_file


def unnamed(root):
    """The files under ``root`` that the layout does not name."""
    odd = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if len(rel) == 1:
            ok = rel[0] in layout.FILES or (p.is_dir() and rel[0] in layout.FOLDERS)
        else:
            ok = (rel[0] in (layout.CHECKPOINTS, layout.STATES) and rel[-1].endswith(layout.TENSORS)
                  or rel[0] == layout.FIGURES and rel[-1].endswith(".png") or rel[0] == layout.TENSORBOARD)
        if not ok:
            odd.append("/".join(rel))
    return odd


def test_every_file_a_study_writes_is_named_by_the_layout(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(str(study_file(tmp_path, b_epochs=3))), out=tmp_path / "run", quiet=True,
                  threads=1, listeners=[InterruptAfter("b", 2)])
    part = tmp_path / ("run" + layout.INCOMPLETE)
    assert unnamed(part) == []
    assert {layout.STUDY, layout.RESUME, layout.METRICS, layout.STATES} <= {p.name for p in part.iterdir()}
    assert (part / layout.STATES / ("b" + layout.TENSORS)).is_file()
    from aelab.runner import resume_study

    out = resume_study(part, quiet=True, threads=1)
    assert unnamed(out) == []
    names = {p.name for p in out.iterdir()}
    assert {layout.STUDY, layout.METRICS, layout.HISTORY, layout.LOG, layout.REPORT, layout.CHECKPOINTS,
            layout.FIGURES} <= names
    assert not names & {layout.RESUME, layout.LOCK, layout.STATES}  # what only resuming needs goes
    assert layout.checkpoint_path(out, "a").is_file()


def test_an_atomic_write_leaves_the_old_file_whole_when_it_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write(path, "old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_the_lock_keeps_a_second_writer_out_until_released(tmp_path):
    first = RunFolder.create(tmp_path / "x")
    first.start("", {})
    with pytest.raises(AelabError, match="Another aelab process is writing"):
        RunFolder.open(first.path)
    first.release()
    RunFolder.open(first.path).release()


def test_check_target_refuses_an_unfinished_folder_and_writes_nothing(tmp_path):
    RunFolder.create(tmp_path / "x").release()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(AelabError, match=r"holds an unfinished run of this study; resume it with `aelab run --resume"):
        RunFolder.check_target(tmp_path / "x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_folder_writes_stay_inside(tmp_path):
    folder = RunFolder.create(tmp_path / "x")
    try:
        with pytest.raises(AelabError):
            folder.write_checkpoint("../escape", b"x")
    finally:
        folder.release()
    assert not (tmp_path / "x.incomplete" / "escape.safetensors").exists()
