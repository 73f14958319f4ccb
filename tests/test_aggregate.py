"""Repeats over seeds: mean, std and Student-t intervals per configuration, and differences."""

from __future__ import annotations

import io
import json
import math

import pytest
from scipy import stats

from aelab.aggregate import aggregates, configuration, difference, differences, summarize


def entry(label, seed, val, bs=32, status="completed"):
    return {"name": f"{label}-bs{bs}-seed{seed}", "label": label, "status": status, "val_loss": val,
            "test_loss": val + 0.01, "epochs_run": 5, "sweep": {"batch_size": bs, "seed": seed}}


def test_summary_is_students_t_interval_of_the_mean():
    values = [0.21, 0.23, 0.22, 0.25, 0.20]
    s = summarize(values)
    mean, sem = sum(values) / 5, stats.sem(values)
    lo, hi = stats.t.interval(0.95, 4, loc=mean, scale=sem)
    assert s["n"] == 5 and s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(stats.tstd(values))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi))


def test_configurations_group_runs_that_differ_only_by_seed():
    runs = [entry("a", s, 0.2 + s / 100) for s in range(3)] + [entry("a", s, 0.3, bs=256) for s in range(3)]
    runs += [entry("b", 0, 0.1)]  # one seed only: no statistics
    runs += [entry("a", 9, float("nan"), status="diverged")]  # not a finished configuration member
    groups = aggregates(runs)
    assert [g["configuration"] for g in groups] == ["a, batch_size=32", "a, batch_size=256"]
    g = groups[0]
    assert g["n"] == 3 and g["runs"] == ["a-bs32-seed0", "a-bs32-seed1", "a-bs32-seed2"]
    assert g["metrics"]["val_loss"]["mean"] == pytest.approx(0.21)
    assert configuration(runs[0]) == "a, batch_size=32"


def test_difference_of_two_configurations_is_welch():
    a, b = [0.20, 0.22, 0.21, 0.23], [0.25, 0.27, 0.26, 0.30]
    d = difference(a, b)
    t = stats.ttest_ind(b, a, equal_var=False)
    lo, hi = t.confidence_interval(0.95)
    assert d["difference"] == pytest.approx(sum(b) / 4 - sum(a) / 4)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((lo, hi))
    runs = [entry("a", s, v) for s, v in enumerate(a)] + [entry("b", s, v) for s, v in enumerate(b)]
    diffs = {x["metric"]: x for x in differences(runs, aggregates(runs))}
    assert diffs["val_loss"]["difference"] == pytest.approx(d["difference"])
    assert math.isnan(difference([0.2], [0.3])["ci_low"])  # one run each: no interval


def test_a_study_over_seeds_reports_mean_and_ci_everywhere(tmp_path):
    """seed = [0, 1, 2]: metrics.json keeps every run and adds `aggregates`; the console table,
    the report and `aelab compare` show mean ± std [CI]."""
    from rich.console import Console
    from typer.testing import CliRunner

    from aelab.cli import app
    from aelab.config import load_study
    from aelab.runner import run_study

    study = load_study("quickstart", quick=True, overrides=[
        "seed=[0, 1, 2]", "train.batch_size=128", "data.limit=300", "steps=[{kind='loss_curves'}]",
        "models.sparse.params.activity_l1=1e-3"])
    assert len(study.runs) == 6 and study.runs[1].name == "stacked-seed1"
    console = Console(file=io.StringIO(), width=120, record=True)
    out = run_study(study, out=tmp_path / "run", console=console)
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["runs"]) == 6 and [g["configuration"] for g in m["aggregates"]] == ["stacked", "sparse"]
    vals = [r["val_loss"] for r in m["runs"][:3]]
    assert m["aggregates"][0]["metrics"]["val_loss"]["mean"] == pytest.approx(sum(vals) / 3)
    log = (out / "console.log").read_text()
    assert "Repeats: mean ± std [95% confidence interval]" in log
    assert "Repeated over seeds" in (out / "report.html").read_text()
    result = CliRunner().invoke(app, ["compare", str(out), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "val_loss: sparse − stacked = " in result.stdout and "95% CI, Welch" in result.stdout
