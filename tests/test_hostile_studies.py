"""Property: a study file made by mutating a built-in study (types, ranges, missing and unknown
keys, hostile names, deep nesting, huge sweeps, bad steps and [quick] tables, --set overrides,
encodings, extends chains) either loads or is refused with one AelabError sentence; never
another exception, and loading writes nothing. At the CLI, a refused file gives exit code 2,
one line on stderr, and no run folder.

The mutations live in ``tests/hostile.py``; ``benchmarks/fuzz_studies.py`` runs the same ones
as a larger campaign and counts the outcomes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import Limits, load_study

from .hostile import BUILTINS, make_case, outcome

# Budgets fixed here so the outcome does not depend on the machine's memory.
LIMITS = Limits(max_runs=1000, max_memory=8 * 2**30)
# The same examples on every run (and no example database written into the tree); the campaign
# in benchmarks/fuzz_studies.py explores further.
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_studies_load(name):
    """The starting points load, with and without --quick."""
    for quick in (False, True):
        study = load_study(name, quick=quick, limits=LIMITS)
        assert study.runs or study.search  # a search's trials are sampled as it runs


@settings(FAST, max_examples=300)
@given(rnd=st.randoms(use_true_random=False))
def test_mutated_studies_load_or_say_why(rnd):
    case = make_case(rnd)
    with tempfile.TemporaryDirectory() as tmp:
        cls, err = outcome(case, Path(tmp), LIMITS)
    assert cls in ("loaded", "error"), (
        f"{cls} for {case.what} (quick={case.quick}, set={case.overrides}): {type(err).__name__}: {err}")


cli = CliRunner()


@settings(FAST, max_examples=25)
@given(rnd=st.randoms(use_true_random=False))
def test_cli_refuses_with_one_line_and_no_folder(rnd):
    """``aelab show`` and ``aelab run --out`` on a hostile file: a refused one exits 2 with one
    line on stderr and creates nothing; one that loads is shown (running it is not tried here)."""
    case = make_case(rnd)
    with tempfile.TemporaryDirectory() as tmp:
        path = case.write(Path(tmp))
        flags = (["--quick"] if case.quick else []) + [a for o in case.overrides for a in ("--set", o)]
        shown = cli.invoke(app, ["show", str(path), *flags])
        if shown.exit_code == 0:
            return
        lines = [x for x in shown.stderr.splitlines() if x.strip()]
        assert shown.exit_code == 2 and len(lines) == 1 and lines[0].startswith("aelab: "), (
            f"{case.what}: exit {shown.exit_code}, stderr {shown.stderr!r}, {shown.exception!r}")
        before = sorted(Path(tmp).rglob("*"))
        out = Path(tmp) / "out"
        ran = cli.invoke(app, ["run", str(path), "--out", str(out), *flags])
        assert ran.exit_code == 2 and ran.stderr == shown.stderr
        assert sorted(Path(tmp).rglob("*")) == before  # no folder, no file
