"""registry: named entries with typed info, errors listing the known names, package discovery."""

import sys
from dataclasses import dataclass

import pytest

from aelab.errors import ConfigError
from aelab.registry import DATASETS, EXECUTORS, MODELS, STEPS, Registry, import_modules


@dataclass(frozen=True)
class Info:
    tag: str = ""


def test_register_get_and_filter():
    reg = Registry("thing")

    @reg.register("sparse-a", Info("a"))
    def a():
        """First paragraph
        on two lines.

        Not this one."""

    reg.register("dense")(lambda: None)
    assert reg.get("sparse-a").fn is a and reg.get("sparse-a").info == Info("a")
    assert reg.get("sparse-a").doc == "First paragraph on two lines."
    assert reg.names() == ["dense", "sparse-a"] and reg.names("sparse*") == ["sparse-a"]
    assert "dense" in reg and "x" not in reg and [e.name for e in reg.entries()] == ["dense", "sparse-a"]
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("dense")(lambda: None)


def test_an_unknown_name_is_one_sentence_listing_the_known_ones():
    reg = Registry("thing")
    reg.register("one")(lambda: None)
    with pytest.raises(ConfigError) as err:
        reg.get("two", where="steps[3].kind")
    assert str(err.value) == "steps[3].kind: unknown thing 'two'; choose one of: one."
    with pytest.raises(ConfigError, match=r"^Unknown thing 'x{56}\.\.\.; choose"):
        reg.get("x" * 100)  # a hostile name is cut short
    with pytest.raises(ConfigError):
        reg.get(["not", "hashable"])


def test_every_entry_of_the_real_registries_has_its_typed_info():
    import aelab.datasets
    import aelab.executors
    import aelab.models
    import aelab.steps  # noqa: F401
    from aelab.datasets import DatasetInfo
    from aelab.executors import ExecutorInfo
    from aelab.models import ModelInfo
    from aelab.steps import StepInfo

    for registry, kind in ((MODELS, ModelInfo), (STEPS, StepInfo), (DATASETS, DatasetInfo), (EXECUTORS, ExecutorInfo)):
        assert registry.entries() and all(isinstance(e.info, kind) for e in registry.entries()), registry.kind


def test_import_modules_imports_every_public_module_of_a_package(tmp_path, monkeypatch):
    pkg = tmp_path / "plugpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "one.py").write_text("LOADED = True\n")
    (pkg / "_private.py").write_text("raise RuntimeError('private modules are not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import plugpkg

    import_modules("plugpkg", plugpkg.__path__)
    assert sys.modules["plugpkg.one"].LOADED and "plugpkg._private" not in sys.modules
