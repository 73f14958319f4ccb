"""A run folder back in Python, for a notebook: ``aelab.load_run(folder)`` -> :class:`Run`.

A run folder holds the study as it ran (``study.toml``: file, ``--quick`` and ``--set``
merged), the records (``metrics.json``) and the checkpoints. From these, :class:`Run` gives
back the exact train/val/test splits the runs used (the split is a pure function of the
``[data]`` table, the study's seed and the data files; the sizes and class names are checked
against the ones the run wrote), the trained models in eval mode (loaded when first used), the
records and each run's history. It reads a finished folder and a ``.incomplete`` one alike,
and writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AelabError
from .records import RunRecord
from .runs.folder import (
    CHECKPOINTS,
    MAX_TENSORS,
    MAX_TEXT,
    STUDY,
    TENSORS,
    checkpoint_path,
    inside,
    read_metrics,
    read_resume,
)

if TYPE_CHECKING:  # for annotations only: aelab.datasets imports torch
    from .datasets import DataInfo

__all__ = ["Run", "open_run", "load_run"]


class Models(Mapping):
    """Run name -> trained model (eval mode), read from ``checkpoints/`` on first access and
    kept; a run that trained no epoch has no checkpoint and no entry."""

    def __init__(self, folder: Path, names: list[str], diverged: set[str] = frozenset()):
        self._folder, self._names, self._loaded, self._diverged = folder, names, {}, diverged

    def __getitem__(self, name: str):
        if name not in self._names:
            raise KeyError(f"No trained model named {name!r} in {self._folder}; there are: "
                           f"{', '.join(self._names) or 'none'}.")
        if name not in self._loaded:
            from .runs.checkpoints import load_checkpoint

            path = inside(self._folder, CHECKPOINTS, name + TENSORS, limit=MAX_TENSORS)
            self._loaded[name] = load_checkpoint(path, nonfinite=name in self._diverged)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        shown = ", ".join(n + ("" if n in self._loaded else " (not loaded yet)") for n in self._names)
        return f"Models({shown or 'none'})"


class Run:
    """One study's run folder. ``records``, ``metrics`` and ``study`` are read at once; the
    ``splits`` (data loading) and each model (a checkpoint) only when first used."""

    def __init__(self, path: Path, metrics: dict, study, data_dir=None):
        self.path = path
        self.metrics = metrics  # metrics.json as written (runs, summary, figures, dataset, ...)
        self.study = study  # config.Study rebuilt from the folder's study.toml
        self.data_dir = data_dir
        planned = [s.name for s in study.runs]
        entries = {e.get("name"): e for e in metrics.get("runs", []) if isinstance(e, dict)}
        # Records of the planned runs, in study order; step baselines (raw-pixels) kept apart.
        self.records = [RunRecord.from_json(entries[n]) for n in planned if n in entries]
        self.baselines = [e for n, e in entries.items() if n not in planned]
        trained = [n for n in planned if os.path.lexists(checkpoint_path(path, n))]
        self.models = Models(path, trained, {r.name for r in self.records if r.status == "diverged"})
        self._splits = None
        self.data_info: DataInfo | None = None  # datasets.prepare's info, once the splits are loaded

    @property
    def complete(self) -> bool:
        return bool(self.metrics.get("complete"))

    def record(self, name: str) -> RunRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise AelabError(f"No run named {name!r} in {self.path}; there are: "
                         f"{', '.join(r.name for r in self.records) or 'none'}.")

    def history(self, name: str) -> list[dict]:
        """The run's epochs, one dict each (``epoch``, ``train_loss``, ``val_loss``, ...):
        ``pandas.DataFrame(run.history(name))`` makes it a table."""
        return [dict(e) for e in self.record(name).history]

    def train_config(self, name: str):
        """The run's resolved :class:`aelab.TrainConfig` (batch size, early stopping, seed...)."""
        for s in self.study.runs:
            if s.name == name:
                return s.train
        raise AelabError(f"No run named {name!r} in the study of {self.path}.")

    @property
    def splits(self) -> dict:
        """"train"/"val"/"test" -> datasets.Dataset: the images and labels the runs used."""
        if self._splits is None:
            self._splits, self.data_info = _rebuild_splits(self)
        return self._splits

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        quick = " (quick run)" if self.metrics.get("quick") else ""
        lines = [f"<Run {self.study.name}{quick} in {self.path}: {state}, "
                 f"{len(self.records)} of {len(self.study.runs)} runs"]
        width = max((len(r.name) for r in self.records), default=0)
        for r in self.records:
            losses = "  ".join(f"{k} {v:.4f}" for k, v in
                               (("train", r.train_loss), ("val", r.val_loss), ("test", r.test_loss))
                               if v is not None)
            lines.append(f"  {r.name:<{width}}  {r.status:<13} {r.epochs_run:>3} epochs  {losses}")
        info = self.metrics.get("dataset") or {}
        sizes = " / ".join(f"{k} {v:,}" for k, v in (info.get("splits") or {}).items())
        loaded = "loaded" if self._splits is not None else "loaded on first use of .splits"
        lines.append(f"  data: {info.get('dataset', '?')}, {sizes} ({loaded})")
        lines.append(f"  models: {', '.join(self.models) or 'none'} (.models[name], eval mode)>")
        return "\n".join(lines)


def open_run(folder: str | Path, data_dir=None) -> Run:
    """The run folder ``folder`` (finished or ``.incomplete``) as a :class:`Run`.

    ``data_dir`` is where the data files are (as ``aelab run --data-dir``); an unfinished
    folder remembers the one it was started with."""
    from .config import build_study, parse_toml

    path = Path(folder)
    if not path.is_dir():
        raise AelabError(f"{path} is not a folder; give a run folder (runs/<study>-<time>).")
    metrics = read_metrics(path)
    if not os.path.lexists(path / STUDY):
        raise AelabError(f"{path} has no {STUDY}, so its study (and data split) is unknown.")
    resume = read_resume(path)
    study = build_study(parse_toml(inside(path, STUDY, limit=MAX_TEXT)), resume.get("source") or str(path / STUDY),
                        quick=bool(metrics.get("quick")))
    return Run(path, metrics, study, data_dir or resume.get("data_dir"))


load_run = open_run  # the public name: aelab.load_run(folder)


def _rebuild_splits(run: Run) -> tuple[dict, DataInfo]:
    """``datasets.prepare`` on the study's ``[data]`` and seed, as the runner called it, loading the
    dataset the run actually used (its fallback, if it fell back); refused when the result does
    not match what the run recorded (another dataset found now, other sizes or classes)."""
    import dataclasses

    from .datasets import DataInfo, prepare

    study, table = run.study, run.metrics.get("dataset")
    wrote = DataInfo.from_json(table) if table else None
    cfg = study.data
    if wrote and wrote.fallback_used and cfg.fallback:
        cfg = dataclasses.replace(cfg, dataset=cfg.fallback, fallback=None)
    elif wrote:
        cfg = dataclasses.replace(cfg, fallback=None)  # the run had its dataset: so must we
    splits, info = prepare(cfg, study.seed, run.data_dir)
    for key in ("dataset", "splits", "class_names", "image_shape"):
        if wrote and getattr(wrote, key) != getattr(info, key):
            raise AelabError(
                f"The data found now do not match what {run.path} used ({key}: run "
                f"{getattr(wrote, key)!r}, now {getattr(info, key)!r}); pass the data folder the "
                "study ran with as data_dir.")
    return splits, info
