"""docs/architecture.md stays true: its tree is the package's, its five examples run, and the
size rules hold (no module over 400 lines, no function over 60)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "aelab"
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def documented_modules() -> set[str]:
    """The .py paths of the doc's tree, from its indentation (two spaces a level)."""
    block = DOC.split("```\nsrc/aelab/\n", 1)[1].split("```", 1)[0]
    stack, out = [], set()
    for line in block.splitlines():
        m = re.match(r"( *)(\S+)", line)
        if not m:
            continue
        depth, name = len(m.group(1)) // 2 - 1, m.group(2)
        stack = stack[:depth]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        elif name.endswith(".py"):
            out.add("/".join([*stack, name]))
    return out


def test_the_documented_tree_is_the_package():
    actual = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert documented_modules() == actual


def test_no_module_over_400_lines_and_no_function_over_60():
    long_modules, long_functions = [], []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 400:
            long_modules.append(path.relative_to(SRC).as_posix())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long_functions.append(f"{path.relative_to(SRC).as_posix()}:{node.name}")
    assert long_modules == [] and long_functions == []


def examples() -> list[str]:
    part = DOC.split("## Where each extension goes", 1)[1]
    return re.findall(r"```python\n(.*?)```", part, flags=re.S)


@pytest.fixture
def registered():
    """Registry entries the examples add are taken out again."""
    from aelab import registry

    before = {r: set(r.names()) for r in (registry.MODELS, registry.STEPS, registry.DATASETS, registry.EXECUTORS)}
    yield
    for reg, names in before.items():
        for extra in set(reg.names()) - names:
            del reg._entries[extra]


def test_the_five_extension_examples_work(tmp_path, registered):
    model, step, dataset, executor, listener = examples()
    for code in (model, step, dataset, executor):
        exec(compile(code, "docs/architecture.md", "exec"), {"__name__": "example"})
    import aelab
    from aelab.datasets import load_dataset
    from aelab.models import create_model

    assert create_model("tiny-example", (1, 8, 8), code_size=3).encode(load_dataset("noise-example").x[:2]).shape == (2, 3)
    study = tmp_path / "s.toml"
    study.write_text('name = "ex"\n[data]\ndataset = "noise-example"\n[train]\nepochs = 1\n'
                     '[[models]]\nname = "t"\nmodel = "tiny-example"\n[[steps]]\nkind = "code_norm_example"\n')
    printed = []
    namespace = {"__name__": "example", "OUT": tmp_path / "run", "print": printed.append}
    exec(compile(listener.replace('aelab.load_study("quickstart", quick=True)', f'aelab.load_study({str(study)!r})'),
                 "docs/architecture.md", "exec"), namespace)
    metrics = aelab.read_metrics(namespace["folder"])
    assert metrics["runs"][0]["code_norm"] > 0 and printed == ["t epoch 1: val " + f"{metrics['runs'][0]['val_loss']:.4f}"]
    from aelab.executors import create_executor

    assert type(create_executor("reverse-example", specs=[1, 2])).__name__ == "Reverse"
