"""A study's ``[data]`` made ready: load (or fall back), select classes, subsample, split.

``prepare`` returns the splits and a :class:`DataInfo`, the typed record of what was done that
the printout, the trackers, metrics.json (``"dataset"``) and the steps read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError
from ._base import Dataset
from .idx import OFFICIAL
from .load import load_dataset, registered
from .split import (
    class_distribution,
    filter_classes,
    limit_per_class,
    split_indices,
    split_sizes,
    stratified_split,
)

_JSON_KEYS = ("dataset", "requested", "fallback_used", "source", "n_images", "image_shape", "class_names",
              "split", "splits", "distribution")  # metrics.json's "dataset" table: a public format
_ADDED_KEYS = ("scaling", "stratification")  # added 2026-11; older folders lack them


@dataclass(frozen=True)
class DataInfo:
    """What ``prepare`` loaded and how it split it, in words and numbers a report can cite."""

    dataset: str  # the dataset loaded: the fallback's name when it was used
    requested: str  # data.dataset as the study gives it
    fallback_used: bool
    source: str  # where the images came from (a folder, a package, a file)
    n_images: int  # distinct images over the parts (the validation part may be the test set)
    image_shape: tuple[int, ...]  # (C, H, W)
    class_names: list[str]  # index = label, after data.classes
    split: str  # how the parts were made, e.g. "stratified 5:1:1 (150/30/30)"
    splits: dict[str, int]  # part ("train", "val", "test") -> images
    distribution: dict[str, list[tuple[str, int, float]]]  # part -> (class, count, percent); {} unlabelled
    # Printed with the data and stated in the report, so a report can cite them.
    scaling: str = ""  # how stored pixel values became floats in [0, 1]
    stratification: str = ""  # how the parts keep (or not) the class proportions

    @property
    def preprocessing(self) -> str:
        """One citable line: pixel scaling and how the split treats classes."""
        return "; ".join(p for p in (self.scaling, self.stratification and f"split {self.stratification}") if p)

    def to_json(self) -> dict:
        """metrics.json's ``"dataset"`` table: its published keys, and the preprocessing."""
        out = {k: getattr(self, k) for k in _JSON_KEYS + _ADDED_KEYS}
        out["image_shape"] = list(self.image_shape)
        return out

    @classmethod
    def from_json(cls, d: dict) -> DataInfo:
        """A run folder's ``"dataset"`` table read back (JSON lists become tuples again)."""
        values = {k: d[k] for k in _JSON_KEYS} | {k: str(d.get(k) or "") for k in _ADDED_KEYS}
        values["image_shape"] = tuple(d["image_shape"])
        values["distribution"] = {k: [tuple(r) for r in rows] for k, rows in d["distribution"].items()}
        return cls(**values)


def known_image_shape(cfg) -> tuple[int, int, int] | None:
    """(C, H, W) of the images a ``[data]`` table will load, when knowable without reading
    them: a built-in dataset whose fallback (if any) has the same shape; None for paths."""
    shapes = {registered(n).info.image_shape if registered(n) else None
              for n in (cfg.dataset, cfg.fallback) if n}
    return shapes.pop() if len(shapes) == 1 else None


def _official_parts(name: str, seed: int, data_dir) -> tuple[Dataset, Dataset, str]:
    """(train, test, how): the dataset's own parts, or for a fallback without them
    (mnist -> mnist-5k) a stratified split in the official 6:1 proportions."""
    entry = registered(name)
    if entry is not None and entry.info.official_split:
        train, test = (load_dataset(name, part=p, data_dir=data_dir) for p in ("train", "test"))
        return train, test, "official"
    ds = load_dataset(name, data_dir=data_dir)
    train, test = stratified_split(ds, [OFFICIAL["train"], OFFICIAL["test"]], seed).values()
    return train, test, f"{ds.name} has no official split: stratified 6:1 in its place"


def _official_splits(train: Dataset, test: Dataset, how: str, cfg, seed: int):
    """train/val/test from the official parts (limited to ``cfg.limit`` in proportion), the
    description of the split for the report, and whether the parts were cut (not as published)."""
    n, val = len(train) + len(test), getattr(cfg, "val", None)
    cut = how != "official" or isinstance(val, float)
    if cfg.limit is not None and cfg.limit < n:
        n_train = min(max(round(cfg.limit * len(train) / n), 1), cfg.limit - 1)
        train = limit_per_class(train, n_train, seed=seed)
        test = limit_per_class(test, cfg.limit - n_train, seed=seed)
        cut = True
    text = f"{how} {len(train):,}/{len(test):,}"
    if val == "test":
        return {"train": train, "val": test, "test": test}, text + "; validation = the test set (as the Keras blog)", cut
    if val is None:
        return {"train": train, "test": test}, text + "; no validation part", cut
    sizes = split_sizes(len(train), [1 - val, val], train.name)
    keep, carved = split_indices(len(train), None if train.y is None else train.y.numpy(), sizes, seed, train.name)
    splits = {"train": train.subset(torch.from_numpy(keep)), "val": train.subset(torch.from_numpy(carved)),
              "test": test}
    return splits, text + (f"; validation {val * 100:g}% of training, stratified "
                           f"({'/'.join(f'{len(v):,}' for v in splits.values())})"), cut


def _load(cfg, seed: int, data_dir):
    """(what was loaded, whether it is the fallback): only a dataset that cannot be loaded
    falls back, not a bad class selection."""
    def load(name):
        if cfg.split == "official":
            return _official_parts(name, seed, data_dir)
        return load_dataset(name, part=cfg.part, data_dir=data_dir)

    try:
        return load(cfg.dataset), False
    except DataError:
        if not cfg.fallback:
            raise
        return load(cfg.fallback), True


def _stratification(labelled: bool, cut: bool, seed: int) -> str:
    if not cut:
        return "none (the official train and test parts as published)"
    if not labelled:
        return f"at random (seed {seed}; the images have no labels)"
    return f"stratified by class (seed {seed})"


def prepare(cfg, seed: int, data_dir: str | Path | None = None) -> tuple[dict[str, Dataset], DataInfo]:
    """Load, filter, subsample and split a study's data; returns (splits, info).

    ``cfg`` is a study's checked ``[data]`` (``config.DataConfig``). The fallback is loaded when
    the dataset cannot be (e.g. no full MNIST offline), and ``info`` says so. ``split =
    "official"`` keeps the dataset's own train/test parts, with validation carved from training
    by ``val`` (stratified), or the test set itself as the Keras blog did."""
    loaded, used_fallback = _load(cfg, seed, data_dir)
    if cfg.split == "official":
        train, test, how = loaded
        if cfg.classes is not None:
            train, test = filter_classes(train, cfg.classes), filter_classes(test, cfg.classes)
        splits, split_text, cut = _official_splits(train, test, how, cfg, seed)
    else:
        ds = loaded if cfg.classes is None else filter_classes(loaded, cfg.classes)
        if cfg.limit is not None and cfg.limit < len(ds):
            ds = limit_per_class(ds, cfg.limit, seed=seed)
        splits, cut = stratified_split(ds, cfg.split, seed=seed), True
        split_text = (f"stratified {':'.join(f'{w:g}' for w in cfg.split)} "
                      f"({'/'.join(f'{len(v):,}' for v in splits.values())})")
    ds = splits["train"]
    return splits, DataInfo(
        dataset=ds.name, requested=cfg.dataset, fallback_used=used_fallback, source=ds.source,
        n_images=sum({id(v): len(v) for v in splits.values()}.values()),  # val may be test
        image_shape=tuple(ds.x.shape[1:]), class_names=list(ds.class_names), split=split_text,
        splits={k: len(v) for k, v in splits.items()},
        distribution={k: class_distribution(v) for k, v in splits.items()} if ds.y is not None else {},
        scaling=ds.scaling, stratification=_stratification(ds.y is not None, cut, seed))
