"""A named registry of factories: models, steps, datasets and executors are each one ``Registry``.

A leaf module (it imports nothing of aelab but the errors), so every module can register into a
registry and read from it without import cycles (timm's ``_registry.py``). An unknown name
lists the known ones; ``names("sparse*")`` filters with fnmatch. What a registry's users need to
know of an entry is a typed dataclass (``info``) that the extension point's ``_base.py`` defines.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass
class Entry:
    name: str
    fn: Callable
    info: Any = None  # the extension point's typed metadata (ModelInfo, StepInfo, DatasetInfo, ...)

    @property
    def doc(self) -> str:
        """The first paragraph of the factory's docstring, on one line."""
        text = inspect.getdoc(self.fn) or ""
        return " ".join(text.split("\n\n")[0].split())


class Registry:
    """``kind`` names the things registered ("model", "step", "dataset") in error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, info=None):
        """Decorator: put ``fn`` under ``name`` with its typed ``info``; a name registers once."""

        def deco(fn):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, fn, info)
            return fn

        return deco

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, where: str = "") -> Entry:
        """The entry of ``name``; ``where`` (e.g. "steps[0].kind") prefixes the error."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            prefix = f"{where}: unknown" if where else "Unknown"
            given = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."  # any value from a file
            raise ConfigError(f"{prefix} {self.kind} {given}; choose one of: "
                              f"{', '.join(self.names())}.") from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


# The registries of the things a study names; each package registers its own entries here, with
# the typed info its ``_base.py`` defines (the registries themselves stay untyped: a leaf).
MODELS = Registry("model")  # aelab.models: factories fn(input_shape, **params) -> Autoencoder
STEPS = Registry("step")  # aelab.steps: fn(ctx, **params), run after training
DATASETS = Registry("dataset")  # aelab.datasets: loaders fn(part, data_dir, download, progress) -> Dataset
EXECUTORS = Registry("executor")  # aelab.executors: classes that train a study's runs


def import_modules(package: str, path) -> None:
    """Import every module of an extension package (``models``, ``steps``, ``datasets``,
    ``executors``) but its private ``_*`` ones, so each registers its entries: adding a model,
    step, dataset or executor is one new file, with no list of modules to extend."""
    for mod in pkgutil.iter_modules(path):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")
