"""Searches: the [search] schema, Optuna's samplers and pruners under ask/tell, the journal in
the run folder and its resume, the report pieces, and a tiny search trained with ``fit``."""

from __future__ import annotations

import math

import pytest

from aelab.callbacks import FitState, History
from aelab.config import build_study, load_study
from aelab.errors import ConfigError
from aelab.records import RunRecord
from aelab.search import Search, trial_name

BASE = {
    "name": "s", "seed": 3, "data": {"dataset": "digits"},
    "train": {"epochs": 3, "batch_size": {"choice": [32, 64]},
              "learning_rate": {"log_uniform": [1e-4, 1e-2]}},
    "models": [{"name": "sae", "model": "stacked",
                "params": {"hidden": [32, {"int": [4, 16]}], "activity_l1": {"log_uniform": [1e-8, 1e-4]}}}],
    "search": {"trials": 6, "pruner": "median", "confirm_seeds": [1, 2]},
}


def study(**search):
    import copy

    d = copy.deepcopy(BASE)
    d["search"].update(search)
    return build_study(d)


def record(spec, value: float, status: str = "completed", epochs=3) -> RunRecord:
    t = spec.train
    hist = [{"epoch": e, "val_loss": value} for e in range(1, epochs + 1)]
    return RunRecord(spec.name, spec.model, spec.label, spec.params, spec.sweep, t.seed, t.batch_size,
                     t.optimizer, t.learning_rate, status=status, epochs_run=epochs,
                     val_loss=value if status != "failed" else None, history=hist)


def objective(spec) -> float:
    """A made-up loss of the configuration: lowest near lr 1e-3, batch 32."""
    return abs(math.log10(spec.train.learning_rate) + 3) + spec.train.batch_size / 64


def folder(path):
    """A run folder (the runner makes it; the search only writes its journal into it)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_told(search, n):
    """Ask and tell ``n`` trials with the made-up objective; their sampled values."""
    out = []
    for _ in range(n):
        (spec,) = search.ask(1)
        search.tell(record(spec, objective(spec)))
        out.append(spec.sweep)
    return out


# ---------------------------------------------------------------- schema


def test_a_search_study_loads_with_its_ranges_and_no_planned_runs():
    s = study()
    plan = s.search
    assert s.runs == []
    assert [(d.name, d.kind) for d in plan.dimensions] == [
        ("hidden[1]", "int"), ("activity_l1", "log_uniform"), ("batch_size", "choice"),
        ("learning_rate", "log_uniform")]
    assert plan.direction == "minimize" and plan.epoch_metric
    low, high = plan.ends()
    assert low.params["hidden"] == [32, 4] and high.params["hidden"] == [32, 16]
    assert (low.train.batch_size, high.train.batch_size) == (32, 64)
    assert high.train.learning_rate == 1e-2


def test_the_builtin_search_shoes_loads_as_the_spec_says():
    s = load_study("search-shoes")
    c = s.search.config
    assert (c.trials, c.sampler, c.pruner, c.confirm_seeds) == (30, "tpe", "asha", [1, 2, 3])
    assert {d.name: d.values for d in s.search.dimensions} == {
        "hidden[1]": (16, 128), "activity_l1": (1e-8, 1e-4), "batch_size": (32, 256),
        "learning_rate": (1e-5, 1e-2)}
    quick = load_study("search-shoes", quick=True).search.config
    assert (quick.trials, quick.confirm_seeds) == (4, [1, 2])


def test_a_metric_that_a_step_computes_is_refused_until_steps_run_per_trial():
    d = {**BASE, "steps": [{"kind": "linear_probe"}],
         "search": {"metric": "probe_accuracy", "trials": 3}}
    with pytest.raises(ConfigError, match="computed by a step, which runs after the search"):
        build_study(d)


def _with(path: str, value):
    import copy

    d = copy.deepcopy(BASE)
    node, keys = d, path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    node[keys[-1]] = value
    return d


HOSTILE = [
    ("search.trials", -1, "search.trials"),
    ("search.trials", 10**6, "search.trials"),
    ("search.trials", "many", "search.trials"),
    ("search.sampler", "cmaes", "search.sampler"),
    ("search.pruner", "hyperband", "search.pruner"),
    ("search.metric", "val_accuracy", "search.metric"),
    ("search.metric", "", "search.metric"),
    ("search.max_failures", -2, "search.max_failures"),
    ("search.confirm_seeds", [1, 1], "search.confirm_seeds"),
    ("search.asha", {"reduction_factor": 3}, "search.asha"),
    ("search.median", {"n_warmup_steps": -1}, "search.median.n_warmup_steps"),
    ("search.colour", "red", "search.colour"),
    ("train.learning_rate", {"log_uniform": [0, 1e-2]}, "train.learning_rate"),
    ("train.learning_rate", {"log_uniform": [1e-2, 1e-4]}, "train.learning_rate"),
    ("train.learning_rate", {"uniform": [1e-4]}, "train.learning_rate"),
    ("train.learning_rate", {"uniform": [float("nan"), 1.0]}, "train.learning_rate"),
    ("train.learning_rate", {"uniform": [0.1, 200.0]}, "train.learning_rate"),
    ("train.learning_rate", {"uniform": [1e-4, 1e-2], "step": 1}, "train.learning_rate"),
    ("train.batch_size", {"choice": []}, "train.batch_size"),
    ("train.batch_size", {"choice": [32, 32]}, "train.batch_size"),
    ("train.batch_size", {"choice": [32, 0]}, "train.batch_size"),
    ("train.batch_size", {"int": [16.5, 64]}, "train.batch_size"),
    ("train.batch_size", [32, 64], "train.batch_size"),
    ("train.seed", {"int": [0, 5]}, "train.seed: the seed cannot"),
    ("seed", [1, 2], "seed"),
    ("models.0.params.hidden", [32, {"int": [0, 16]}], "models[0].params.hidden[1]"),
    ("models.0.params.activity_l1", {"log_uniform": [1e-8, "1e-4"]}, "models[0].params.activity_l1"),
]


@pytest.mark.parametrize(("path", "value", "key"), HOSTILE, ids=[f"{p}={v!r}"[:50] for p, v, _ in HOSTILE])
def test_a_hostile_search_table_is_one_sentence_naming_its_key(path, value, key):
    with pytest.raises(ConfigError) as err:
        build_study(_with(path, value))
    text = str(err.value)
    assert key in text and "\n" not in text and text.endswith("."), text


def test_structural_errors_of_a_search_study():
    two = {**BASE, "models": BASE["models"] + [{**BASE["models"][0], "name": "other"}]}
    with pytest.raises(ConfigError, match="one model"):
        build_study(two)
    with pytest.raises(ConfigError, match="known only after training"):
        build_study(_with("search.metric", "test_loss"))
    grid = _with("search.sampler", "grid")
    with pytest.raises(ConfigError, match="cannot enumerate"):
        build_study(grid)
    no_search = {k: v for k, v in BASE.items() if k != "search"}
    with pytest.raises(ConfigError, match=r"train.batch_size is a range, which only"):
        build_study(no_search)


def test_the_budget_is_capped_like_a_sweep(monkeypatch):
    monkeypatch.setenv("AELAB_MAX_RUNS", "7")
    with pytest.raises(ConfigError, match="AELAB_MAX_RUNS"):
        load_study_from(BASE | {"search": {"trials": 6, "confirm_seeds": [1, 2]}})


def load_study_from(d):
    from aelab.config import Limits

    return build_study(d, limits=Limits.from_env())


# ---------------------------------------------------------------- trials as runs


def test_a_trial_becomes_a_run_with_its_values_substituted():
    plan = study().search
    values = {"hidden[1]": 9, "activity_l1": 1e-6, "batch_size": 64, "learning_rate": 3e-3}
    spec = plan.spec(trial_name(7), values)
    assert spec.name == "trial-007" and spec.label == "sae" and spec.model == "stacked"
    assert spec.params == {"hidden": [32, 9], "activity_l1": 1e-6}
    assert (spec.train.batch_size, spec.train.learning_rate, spec.train.seed, spec.train.epochs) == (64, 3e-3, 3, 3)
    assert spec.sweep == values
    again = plan.spec("confirm-seed2", values, seed=2)
    assert again.train.seed == 2 and again.sweep["seed"] == 2


def test_list_choices_travel_through_optuna_as_json(tmp_path):
    d = _with("models.0.params.hidden", {"choice": [[32, 8], [16, 4]]})
    search = Search(build_study(d).search, tmp_path)
    (spec,) = search.ask(1)
    assert spec.params["hidden"] in ([32, 8], [16, 4])


# ---------------------------------------------------------------- sampling, pruning, failures


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_same_seed_samples_the_same_configurations(tmp_path, sampler):
    a = run_told(Search(study(sampler=sampler, trials=8).search, folder(tmp_path / "a")), 8)
    b = run_told(Search(study(sampler=sampler, trials=8).search, folder(tmp_path / "b")), 8)
    assert a == b and len({repr(v) for v in a}) == 8


def test_the_grid_visits_every_point_once(tmp_path):
    d = _with("train.learning_rate", {"choice": [1e-3, 1e-2]})
    d["models"][0]["params"] = {"hidden": [32, {"int": [4, 5]}]}
    d["search"] = {"sampler": "grid", "trials": 8}
    search = Search(build_study(d).search, tmp_path)
    seen = run_told(search, 8)
    assert len({repr(sorted(v.items())) for v in seen}) == 8 and search.done


def fit_state() -> FitState:
    return FitState(model=None, optimizer=None, config=None, history=History(), generators={})


def test_the_median_pruner_prunes_a_bad_trial_through_the_callback(tmp_path):
    search = Search(study(median={"n_startup_trials": 2, "n_warmup_steps": 1}).search, tmp_path)
    for _ in range(2):  # two good trials: 1.0, 0.9, 0.8
        (spec,) = search.ask(1)
        cb, state = search.prune_callback(spec.name), fit_state()
        for epoch in (1, 2, 3):
            cb.on_epoch_end(state, {"epoch": epoch, "val_loss": 1.1 - epoch / 10})
        assert not state.should_stop
        assert search.tell(record(spec, 0.8)) == "complete"
    (spec,) = search.ask(1)
    cb, state = search.prune_callback(spec.name), fit_state()
    cb.on_epoch_end(state, {"epoch": 1, "val_loss": 5.0})  # warm-up: not judged yet
    assert not state.should_stop
    cb.on_epoch_end(state, {"epoch": 2, "val_loss": 5.0})
    assert state.should_stop and state.history.status == "pruned"
    assert state.history.reason == "pruned by the median pruner at epoch 2 (val_loss 5)"
    assert search.tell(record(spec, 5.0, "pruned", epochs=2)) == "pruned"


def test_failures_end_the_search_after_max_failures(tmp_path):
    search = Search(study(max_failures=1, trials=6).search, tmp_path)
    for status in ("failed", "diverged"):
        (spec,) = search.ask(1)
        assert search.tell(record(spec, math.nan, status)) == "fail"
    assert search.remaining == 0 and search.done and search.best() is None and search.confirm_runs() == []


def test_a_completed_run_without_the_metric_is_a_failed_trial(tmp_path):
    search = Search(study().search, tmp_path)
    (spec,) = search.ask(1)
    rec = record(spec, math.nan)
    assert search.tell(rec) == "fail"
    assert search.study.trials[0].user_attrs["reason"] == "the run produced no finite val_loss"


# ---------------------------------------------------------------- the journal and resume


def test_a_reopened_search_reattaches_the_interrupted_trial_and_samples_on_as_before(tmp_path):
    plan = study(sampler="tpe", trials=7, tpe={"n_startup_trials": 2}).search
    whole = run_told(Search(plan, folder(tmp_path / "whole")), 7)

    first = Search(plan, folder(tmp_path / "cut"))
    run_told(first, 3)
    (spec,) = first.ask(1)  # trial 3 starts, reports an epoch, and the process dies
    first.report(spec.name, {"epoch": 1, "val_loss": 9.0})
    del first

    again = Search(plan, folder(tmp_path / "cut"))
    (resumed,) = again.ask(1)
    assert resumed.name == "trial-003" and resumed.sweep == whole[3]
    assert again.report(resumed.name, {"epoch": 1, "val_loss": 9.0}) is None  # reported again: ignored
    again.tell(record(resumed, objective(resumed)))
    rest = run_told(again, 3)
    assert rest == whole[4:] and again.done
    assert [t.value for t in again.study.trials] == [objective(plan.spec("x", v)) for v in whole]


def test_a_reopened_folder_with_other_ranges_is_refused(tmp_path):
    from aelab.errors import AelabError

    Search(study().search, tmp_path)
    other = _with("train.learning_rate", {"log_uniform": [1e-5, 1e-2]})
    with pytest.raises(AelabError, match="other ranges"):
        Search(build_study(other).search, tmp_path)


# ---------------------------------------------------------------- end to end with fit


def test_a_tiny_search_trains_prunes_confirms_and_reports(tmp_path, tiny_splits):
    from aelab.models import create_model
    from aelab.search import load_search
    from aelab.search.report import best_lines, confirmation, confirmation_line, figures, trial_rows
    from aelab.train import fit

    d = {**BASE, "data": {"dataset": "mnist-5k"},
         "search": {"trials": 5, "pruner": "median", "median": {"n_startup_trials": 2},
                    "confirm_seeds": [1, 2]}}
    d["train"] = {**BASE["train"], "epochs": 2}
    search = Search(build_study(d).search, tmp_path)
    data = {"train": tiny_splits["train"], "val": tiny_splits["val"]}

    def train(spec, callbacks):
        model = create_model(spec.model, (1, 28, 28), seed=spec.seed, **spec.params)
        hist = fit(model, data, spec.train, callbacks)
        rec = record(spec, hist.last["val_loss"], hist.status, hist.epochs_run)
        rec.history = hist.epochs
        return rec

    while not search.done:
        for spec in search.ask(1):
            search.tell(train(spec, [search.prune_callback(spec.name)]))
    rows = trial_rows(search.study)
    assert [r["run"] for r in rows] == [f"trial-00{i}" for i in range(5)]
    assert all(r["state"] in ("completed", "pruned") and r["epochs"] in (1, 2) for r in rows)
    best = search.best()
    done = [r for r in rows if r["state"] == "completed"]
    assert best.value == min(r["value"] for r in done)
    confirm = [train(s, []) for s in search.confirm_runs()]
    group = confirmation(confirm)
    assert group["n"] == 2 and group["runs"] == ["confirm-seed1", "confirm-seed2"]
    assert confirmation_line(group, "val_loss").startswith("Best configuration over 2 seeds: val_loss ")
    stored = load_search(tmp_path)
    assert best_lines(stored, "val_loss")[1].startswith(f"Best: {best.name}, val_loss {best.value:.4f}")
    names = [name for name, fig, caption in figures(stored, "val_loss") if caption]
    assert names[:2] == ["search-history", "search-parallel"]


def test_aelab_show_says_what_a_search_will_run():
    from typer.testing import CliRunner

    from aelab.cli import app

    out = CliRunner().invoke(app, ["show", "search-shoes", "--quick"])
    assert out.exit_code == 0, out.output
    assert ("Search: 4 trials of sparse (stacked), tpe sampler (seed 42), pruner asha, minimize val_loss, "
            "at most 5 failed trials; the best configuration again with seeds 1, 2.") in out.output
    assert "  learning_rate (train.learning_rate): log-uniform 1e-05 .. 0.01" in out.output


def hostile_search(rnd) -> dict:
    """A study whose [search] (or one of its ranges) is wrong in one random way."""
    import copy

    word = "".join(rnd.choice("abcxyz_") for _ in range(rnd.randint(1, 12)))
    big = rnd.choice([-(10 ** rnd.randint(0, 9)), 10 ** rnd.randint(7, 12), rnd.uniform(-5, 0.5)])
    bad = {
        "trials": [big, word, [1, 2], {"n": 1}, 0, 2.5, True],
        "sampler": [word, 3, ["tpe"], "TPE", "cmaes"],
        "pruner": [word, 0, "hyperband", {"asha": 1}],
        "metric": [f"val_{word}", "", 7, "probe_accuracy", "x" * 101],
        "direction": [word, "down", 1, ["minimize"]],
        "max_failures": [-1 - rnd.randint(0, 99), word, 1.5, 10 ** 7],
        "confirm_seeds": [[1, 1], word, [word], [-1 - rnd.randint(0, 9)], list(range(101))],
        "tpe": [{"n_startup_trials": big if big < 0 else -1}, {word + "_": 1}, word],
        "asha": [{"reduction_factor": rnd.randint(-5, 1)}, {"min_resource": 0}],
        "median": [{"n_warmup_steps": -1}, {"interval_steps": 0}, {word + "_": 2}],
        word + "_key": [1, word],
    }
    ranges = [{"log_uniform": [0, 1e-2]}, {"log_uniform": [1e-2, 1e-4]}, {"uniform": [rnd.random()]},
              {"int": [1.5, 64]}, {"choice": []}, {"choice": [32, 32]}, {word + "_r": [1, 2]},
              {"uniform": [1e-4, 1e-2], "step": 1}, {"choice": [32, -rnd.randint(1, 9)]}, [1e-3, 1e-2]]
    d = copy.deepcopy(BASE)
    if rnd.random() < 0.25:
        key = rnd.choice(["learning_rate", "batch_size"])
        d["train"][key] = rnd.choice(ranges)
    elif rnd.random() < 0.1:
        d["search"] = rnd.choice([word, 3, [1, 2]])
    else:
        key = rnd.choice(sorted(bad))
        d["search"][key] = rnd.choice(bad[key])
        if key == "tpe" or (key in ("asha", "median") and rnd.random() < 0.5):
            d["search"]["pruner" if key != "tpe" else "sampler"] = "none" if key != "tpe" else "random"
    return d


def test_100_hostile_search_tables_are_one_sentence_and_exit_2_with_nothing_written(tmp_path):
    import random

    import tomli_w
    from typer.testing import CliRunner

    from aelab.cli import app

    cli = CliRunner()
    for i in range(100):
        d = hostile_search(random.Random(i))
        path = tmp_path / f"h{i}.toml"
        path.write_text(tomli_w.dumps(d))
        ran = cli.invoke(app, ["run", str(path), "--out", str(tmp_path / f"out{i}")])
        lines = [x for x in ran.stderr.splitlines() if x.strip()]
        assert ran.exit_code == 2 and len(lines) == 1 and lines[0].startswith("aelab: "), (
            i, d.get("search"), d["train"], ran.stderr, ran.exception)
        assert lines[0].endswith("."), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"h{i}.toml" for i in range(100))
