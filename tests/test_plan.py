"""The plan: sweeps expand into runs (cartesian product, names, the cap), and stack groups."""

import pytest

from aelab.config import load_study
from aelab.errors import ConfigError
from aelab.plan import expand, stack_groups

from .test_config import BASE, write


def test_sweep_expands_per_model_and_value(tmp_path):
    study = load_study(write(tmp_path, BASE.format(extra="")))
    runs = study.runs
    assert [r.name for r in runs] == ["a-bs32", "a-bs64"]
    assert [r.train.batch_size for r in runs] == [32, 64] and runs[0].train.seed == 1


def test_sweeps_over_model_params_train_and_seed_are_a_cartesian_product(tmp_path):
    text = BASE.format(extra="").replace("batch_size = [32, 64]", "batch_size = 32\nlearning_rate = [1e-3, 1e-4]")
    text = text.replace("seed = 1", "seed = [0, 1]").replace("hidden = [16, 4]", "hidden = [[16, 4], [32, 8]], activity_l1 = [0.0, 1e-5]")
    study = load_study(write(tmp_path, text))
    names = [r.name for r in study.runs]
    assert len(names) == 2 * 2 * 2 * 2 and len(set(names)) == 16
    assert names[0] == "a-hidden16x4-activity_l1_0-lr0.001-seed0"
    assert names[-1] == "a-hidden32x8-activity_l1_1e-05-lr0.0001-seed1"
    last = study.runs[-1]
    assert last.params == {"hidden": [32, 8], "activity_l1": 1e-5} and last.train.learning_rate == 1e-4
    assert last.sweep == {"hidden": [32, 8], "activity_l1": 1e-5, "learning_rate": 1e-4, "seed": 1}
    assert last.seed == 1 and study.seed == 0  # the split uses the first seed


def test_sparse_codes_sweeps_k_in_one_entry():
    study = load_study("sparse-codes")
    ks = [r for r in study.runs if r.model == "k-sparse"]
    assert [r.name for r in ks] == ["ksparse-k10", "ksparse-k25", "ksparse-k40", "ksparse-k70"]
    assert [r.params["k"] for r in ks] == [10, 25, 40, 70] and ks[0].sweep == {"k": 10}


def test_a_sweep_too_large_is_refused_before_expanding(tmp_path, monkeypatch):
    text = BASE.format(extra="").replace("epochs = 1", "epochs = [1, 2, 3]")
    monkeypatch.setenv("AELAB_MAX_RUNS", "5")
    with pytest.raises(ConfigError, match="more than 5 runs.*AELAB_MAX_RUNS"):
        load_study(write(tmp_path, text))


def test_expand_names_runs_after_the_swept_values():
    from aelab.config import ModelEntry

    runs = expand([ModelEntry(name="m", model="simple", params={"code_size": [8, 16]})], {"epochs": 2}, [0, 1])
    assert [r.name for r in runs] == ["m-code_size8-seed0", "m-code_size8-seed1", "m-code_size16-seed0", "m-code_size16-seed1"]
    assert {r.train.epochs for r in runs} == {2} and [r.seed for r in runs] == [0, 1, 0, 1]


def test_two_entries_that_would_name_the_same_run_are_refused():
    from aelab.config import ModelEntry

    with pytest.raises(ConfigError, match="both be named 'm'"):
        expand([ModelEntry(name="m", model="simple"), ModelEntry(name="m", model="deep")], {}, 0)


def test_stack_groups_join_runs_alike_but_for_seed_rate_and_member_params(tmp_path):
    text = BASE.format(extra="").replace("hidden = [16, 4]", "hidden = [16, 4], activity_l1 = [0.0, 1e-5]")
    runs = load_study(write(tmp_path, text.replace("seed = 1", "seed = [0, 1]"))).runs
    groups = [[r.name for r in g] for g in stack_groups(runs)]
    # batch size changes the steps: two groups; activity_l1 and seed may differ within one
    assert groups == [[r.name for r in runs if r.train.batch_size == bs] for bs in (32, 64)]
    assert all(len(g) == 4 for g in groups)
    off = load_study(write(tmp_path, text.replace("epochs = 1", 'epochs = 1\nvectorize = "off"'), "off.toml")).runs
    assert all(len(g) == 1 for g in stack_groups(off))
    bf16 = load_study(write(tmp_path, text.replace("epochs = 1", 'epochs = 1\nprecision = "bf16"'), "bf.toml")).runs
    assert all(len(g) == 1 for g in stack_groups(bf16))
