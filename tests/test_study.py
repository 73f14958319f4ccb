"""Study files: validation with key paths, sweeps, overrides, and the run folder contract."""

import json

import pytest

from aelab.errors import AelabError, ConfigError
from aelab.study import expand_runs, load_study, run_study


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
[[models]]
name = "a"
model = "stacked"
params = {{ hidden = [16, 4] }}
{extra}
"""


def test_sweep_expands_per_model_and_value(tmp_path):
    study = load_study(write(tmp_path, BASE.format(extra="")))
    runs = expand_runs(study)
    assert [r.name for r in runs] == ["a-bs32", "a-bs64"]
    assert [r.train.batch_size for r in runs] == [32, 64] and runs[0].train.seed == 1


def test_fashion_shoes_expands_to_the_four_spec_runs():
    study = load_study("fashion-shoes")
    runs = expand_runs(study)
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
        ("", ["train.learning_rate='fast'"], r"learning_rate = 'fast' has the wrong type"),
        ("", ["data.split=[1]"], r"data\.split"),
        ("", ["data.colour=1"], r"Unknown key 'data\.colour'"),
        ("", ["train.optimizer='adamw9'"], r"train\.optimizer = 'adamw9' is not allowed; use one of nadam"),
        ("", ["models.a.params.depth=3"], r"models\[0\]\.params\.depth: model 'stacked' has no such parameter"),
        ("", ["train.early_stopping={patience=-1}"], r"early_stopping\.patience"),
        ("[[steps]]\nkind = 'bogus'", [], r"steps\[0\]\.kind: unknown step 'bogus'"),
        ("[[steps]]\nkind = 'reconstructions'\ncount = 3", [], r"Unknown key 'steps\[0\]\.count'"),
    ],
)
def test_bad_values_name_the_key(tmp_path, extra, override, message):
    with pytest.raises(ConfigError, match=message):
        load_study(write(tmp_path, BASE.format(extra=extra)), overrides=override)


def test_unknown_model_lists_known(tmp_path):
    with pytest.raises(ConfigError, match="Unknown model 'nope'.*stacked"):
        load_study(write(tmp_path, BASE.format(extra="").replace('model = "stacked"', 'model = "nope"')))


def test_unknown_study_and_bad_toml(tmp_path):
    with pytest.raises(AelabError, match="Unknown study 'no-such'.*fashion-shoes"):
        load_study("no-such")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(write(tmp_path, "name = "))


def test_quick_then_overrides_precedence(tmp_path):
    text = BASE.format(extra="[quick]\ntrain = { epochs = 2 }")
    assert expand_runs(load_study(write(tmp_path, text)))[0].train.epochs == 1
    assert expand_runs(load_study(write(tmp_path, text), quick=True))[0].train.epochs == 2
    s = load_study(write(tmp_path, text), quick=True, overrides=["train.epochs=3"], seed=9)
    assert expand_runs(s)[0].train.epochs == 3 and s.seed == 9


def test_run_study_writes_a_complete_folder(tmp_path):
    study = load_study(write(tmp_path, BASE.format(extra="[[steps]]\nkind = 'loss_curves'")))
    out = run_study(study, out=tmp_path / "run", quiet=True)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"study.toml", "console.log", "metrics.json", "history.csv", "figures/loss_curves.png",
            "checkpoints/a-bs32.safetensors", "checkpoints/a-bs64.safetensors"} <= files
    m = json.loads((out / "metrics.json").read_text())
    assert m["study"] == "t" and m["dataset"]["splits"] == {"train": 214, "val": 43, "test": 43}
    run = m["runs"][0]
    for key in ("name", "model", "batch_size", "epochs_run", "stopped_early", "status", "train_loss",
                "val_loss", "test_loss", "seconds", "seconds_per_epoch", "peak_rss_mb", "history"):
        assert key in run, key
    assert run["status"] == "completed" and len(run["history"]) == 1
    assert "Results" in (out / "console.log").read_text()  # recorded even with quiet=True
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no temp folder left
    with pytest.raises(AelabError, match="exists already"):
        run_study(study, out=out, quiet=True)


def test_same_seed_same_numbers(tmp_path):
    study = load_study(write(tmp_path, BASE.format(extra="")), overrides=["train.batch_size=64"])
    a = json.loads((run_study(study, out=tmp_path / "a", quiet=True) / "metrics.json").read_text())
    b = json.loads((run_study(study, out=tmp_path / "b", quiet=True) / "metrics.json").read_text())
    assert [r["val_loss"] for r in a["runs"]] == [r["val_loss"] for r in b["runs"]]


def test_model_that_cannot_be_built_stops_the_study_before_any_folder(tmp_path):
    text = BASE.format(extra='[[models]]\nname = "b"\nmodel = "stacked"\nparams = { hidden = [16, 4], output = "linear" }')
    with pytest.raises(ConfigError, match=r"models\.b \(stacked\) cannot be built for 1×28×28 inputs.*sigmoid"):
        run_study(load_study(write(tmp_path, text)), out=tmp_path / "run", quiet=True)
    assert list(tmp_path.iterdir()) == [tmp_path / "s.toml"]


def test_failed_run_does_not_stop_the_study(tmp_path, monkeypatch):
    import aelab.train

    real_fit = aelab.train.fit

    def fit(model, data, cfg, callbacks=()):
        if cfg.batch_size == 64:
            raise RuntimeError("boom")
        return real_fit(model, data, cfg, callbacks)

    monkeypatch.setattr(aelab.train, "fit", fit)
    out = run_study(load_study(write(tmp_path, BASE.format(extra=""))), out=tmp_path / "run", quiet=True)
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["completed", "failed"]
    assert runs[1]["reason"] == "RuntimeError: boom"


def test_extends_merges_tables_and_replaces_arrays_of_the_base_study(tmp_path):
    base = write(tmp_path, BASE.format(extra='[[steps]]\nkind = "loss_curves"'), "base.toml")
    variant = write(tmp_path, f'extends = "{base}"\nname = "v"\n[data]\nlimit = 200\n'
                    '[[models]]\nname = "z"\nmodel = "simple"\n', "v.toml")
    study = load_study(variant)
    assert study.name == "v" and "extends" not in study.resolved
    assert (study.data.dataset, study.data.limit) == ("mnist-5k", 200)  # [data] merged key by key
    assert [m.name for m in study.models] == ["z"]  # [[models]] replaced
    assert [s.kind for s in study.steps] == ["loss_curves"] and study.train["epochs"] == 1  # kept
    assert study.source == variant


def test_builtin_fashion_variant_extends_sparse_codes():
    base, fashion = load_study("sparse-codes"), load_study("sparse-codes-fashion")
    assert fashion.data.dataset == "fashion-mnist" and not fashion.data.fallback
    assert [m.name for m in fashion.models] == [m.name for m in base.models]
    assert fashion.train["epochs"] == 10 and base.train["epochs"] == 30
    assert load_study("sparse-codes-fashion", quick=True).train["epochs"] == 2


@pytest.mark.parametrize("target", ["self", "cycle", "missing.toml"])
def test_extends_that_names_no_other_study_is_one_sentence(tmp_path, target):
    path, other = tmp_path / "s.toml", tmp_path / "o.toml"
    other.write_text(f'extends = "{path}"\n')
    base = {"self": path, "cycle": other}.get(target, tmp_path / target)
    path.write_text(f'extends = "{base}"\nname = "x"\n')
    with pytest.raises(AelabError, match="Unknown study" if target == "missing.toml" else "must name another study"):
        load_study(str(path))
