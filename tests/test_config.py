"""Study files: validation with key paths, sweeps over any setting, overrides, extends."""

import pytest

from aelab.config import load_study
from aelab.errors import AelabError, ConfigError


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


BASE = """
name = "t"
seed = 1
[data]
dataset = "mnist-5k"
limit = 300
[train]
epochs = 1
batch_size = [32, 64]
early_stopping = {{ monitor = "val_loss", patience = 3 }}
[[models]]
name = "a"
model = "stacked"
params = {{ hidden = [16, 4] }}
{extra}
"""


def test_fashion_shoes_expands_to_the_four_spec_runs():
    study = load_study("fashion-shoes")
    runs = study.runs
    assert [r.name for r in runs] == ["stacked-bs32", "stacked-bs256", "sparse-bs32", "sparse-bs256"]
    r = runs[3]
    assert r.params["activity_l1"] == 1e-6 and r.train.optimizer == "nadam"
    assert r.train.learning_rate == 1e-4 and r.train.epochs == 50
    es = r.train.early_stopping
    assert (es.monitor, es.patience, es.min_delta) == ("val_loss", 5, 1e-2)
    assert study.data.classes == ["Sandal", "Sneaker", "Ankle boot"]


@pytest.mark.parametrize(
    "extra, override, message",
    [
        ("", ["train.epochs=0"], r"train\.epochs = 0 is not allowed"),
        ("", ["train.epoch=3"], r"Unknown key 'train\.epoch'"),
        ("", ["train.learning_rate='fast'"], r"train\.learning_rate = 'fast' is not allowed: it should be a valid number"),
        ("", ["data.split=[1]"], r"data\.split"),
        ("", ["data.colour=1"], r"Unknown key 'data\.colour'"),
        ("", ["train.optimizer='adamw9'"], r"train\.optimizer = 'adamw9' is not allowed: it should be 'nadam'"),
        ("", ["models.a.params.depth=3"], r"Unknown key 'models\[0\]\.params\.depth'; allowed here: hidden"),
        ("", ["train.early_stopping={patience=-1}"], r"early_stopping\.patience"),
        ("", ["train.early_stopping={monitor='val_kl'}"], r"monitor = 'val_kl' is not a value run a-bs32 produces; choose one of: train_loss"),
        ("", ["data.split=[4, 1]"], r"monitor = 'val_loss'.*no validation part"),
        ("[[steps]]\nkind = 'bogus'", [], r"steps\[0\]\.kind: unknown step 'bogus'"),
        ("[[steps]]\nkind = 'reconstructions'\ncount = 3", [], r"Unknown key 'steps\[0\]\.count'"),
        ("[[steps]]\nkind = 'reconstructions'\nruns = ['nope']", [], r"steps\[0\]\.runs: no run or model named 'nope'"),
        ("[[steps]]\nkind = 'linear_probe'", ["data.split=[4, 1]", "train.early_stopping.monitor='train_loss'"], r"steps\[0\] \(linear_probe\) needs a validation split"),
    ],
)
def test_bad_values_name_the_key(tmp_path, extra, override, message):
    with pytest.raises(ConfigError, match=message):
        load_study(write(tmp_path, BASE.format(extra=extra)), overrides=override)


def test_unknown_model_lists_known(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\]\.model: unknown model 'nope'; choose one of:.*stacked"):
        load_study(write(tmp_path, BASE.format(extra="").replace('model = "stacked"', 'model = "nope"')))


def test_unknown_study_and_bad_toml(tmp_path):
    with pytest.raises(AelabError, match="Unknown study 'no-such'.*fashion-shoes"):
        load_study("no-such")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(write(tmp_path, "name = "))


def test_quick_then_overrides_precedence(tmp_path):
    text = BASE.format(extra="[quick]\ntrain = { epochs = 2 }")
    assert load_study(write(tmp_path, text)).runs[0].train.epochs == 1
    assert load_study(write(tmp_path, text), quick=True).runs[0].train.epochs == 2
    s = load_study(write(tmp_path, text), quick=True, overrides=["train.epochs=3"], seed=9)
    assert s.runs[0].train.epochs == 3 and s.seed == 9


def test_extends_merges_tables_and_replaces_arrays_of_the_base_study(tmp_path):
    base = write(tmp_path, BASE.format(extra='[[steps]]\nkind = "loss_curves"'), "base.toml")
    variant = write(tmp_path, f'extends = "{base}"\nname = "v"\n[data]\nlimit = 200\n'
                    '[[models]]\nname = "z"\nmodel = "simple"\n', "v.toml")
    study = load_study(variant)
    assert study.name == "v" and "extends" not in study.resolved
    assert (study.data.dataset, study.data.limit) == ("mnist-5k", 200)  # [data] merged key by key
    assert [m.name for m in study.models] == ["z"]  # [[models]] replaced
    assert [s.kind for s in study.steps] == ["loss_curves"] and study.runs[0].train.epochs == 1  # kept
    assert study.source == variant


def test_builtin_fashion_variant_extends_sparse_codes():
    base, fashion = load_study("sparse-codes"), load_study("sparse-codes-fashion")
    assert fashion.data.dataset == "fashion-mnist" and not fashion.data.fallback
    assert [m.name for m in fashion.models] == [m.name for m in base.models]
    assert fashion.runs[0].train.epochs == 10 and base.runs[0].train.epochs == 30
    assert load_study("sparse-codes-fashion", quick=True).runs[0].train.epochs == 2


@pytest.mark.parametrize("target", ["self", "cycle", "missing.toml"])
def test_extends_that_names_no_other_study_is_one_sentence(tmp_path, target):
    path, other = tmp_path / "s.toml", tmp_path / "o.toml"
    other.write_text(f'extends = "{path}"\n')
    base = {"self": path, "cycle": other}.get(target, tmp_path / target)
    path.write_text(f'extends = "{base}"\nname = "x"\n')
    with pytest.raises(AelabError, match="Unknown study" if target == "missing.toml" else "must name another study"):
        load_study(str(path))


def test_a_step_naming_a_run_selects_every_seed_of_it():
    """Repeating a built-in study over seeds keeps its steps valid: `stacked-bs256` names the
    run at every seed (`stacked-bs256-seed0` ... `-seed4`)."""
    from aelab.steps import run_names

    study = load_study("fashion-shoes", overrides=["seed=[0, 1, 2, 3, 4]"])
    picked = [r.name for r in study.runs if "stacked-bs256" in run_names(r)]
    assert picked == [f"stacked-bs256-seed{s}" for s in range(5)]
    with pytest.raises(ConfigError, match="no run or model named 'stacked-bs64'"):
        load_study("fashion-shoes", overrides=["seed=[0, 1]", "steps.reconstructions.runs=['stacked-bs64']"])
