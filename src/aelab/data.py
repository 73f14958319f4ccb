"""MERGE: remove. What steps.py imports from the old data module, until steps import aelab.datasets."""

from __future__ import annotations

from types import SimpleNamespace

from .datasets import check_dataset_name, load_dataset
from .datasets import class_indices as _class_indices
from .registry import DATASETS as _REGISTRY

__all__ = ["DATASETS", "_class_indices", "check_dataset_name", "load_dataset"]


class _EntriesWithClasses:
    """MERGE: steps.py reads ``entry.meta["classes"]``; dataset entries carry ``info.classes``."""

    def __contains__(self, name) -> bool:
        return name in _REGISTRY

    def get(self, name: str):
        entry = _REGISTRY.get(name)
        return SimpleNamespace(name=entry.name, meta={"classes": list(entry.info.classes)})


DATASETS = _EntriesWithClasses()
