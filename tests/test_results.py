"""aelab.load_run: a run folder back in Python with the exact splits, models and records."""

import json
import shutil

import pytest
import torch

import aelab
from aelab.errors import AelabError
from aelab.models import create_model
from aelab.train import evaluate_loss, fit


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One real quickstart run (quick budget, 4 runs) shared by the tests of this file."""
    study = aelab.load_study("quickstart", quick=True)
    return aelab.run_study(study, out=tmp_path_factory.mktemp("results") / "qs", quiet=True)


@pytest.fixture
def run(folder):
    return aelab.load_run(folder)


def test_records_histories_and_metrics(run, folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    assert [r.name for r in run.records] == [s.name for s in run.study.runs] == [
        "stacked-bs32", "stacked-bs256", "sparse-bs32", "sparse-bs256"]
    assert run.complete and run.metrics == metrics and run.study.quick
    rec = run.record("sparse-bs256")
    assert rec.params == {"activity_l1": 1e-5} and rec.batch_size == 256
    assert run.history("sparse-bs256") == metrics["runs"][3]["history"]
    assert [e["epoch"] for e in run.history("sparse-bs256")] == list(range(1, rec.epochs_run + 1))
    with pytest.raises(AelabError, match="No run named 'nope'.*stacked-bs32"):
        run.record("nope")


def test_splits_are_the_ones_the_runs_used(run):
    """Re-evaluating each trained model on the rebuilt test and validation splits gives the
    numbers the run recorded: same images, same order, same labels."""
    sizes = run.metrics["dataset"]["splits"]
    assert {k: len(v) for k, v in run.splits.items()} == sizes
    for r in run.records:
        cfg = run.train_config(r.name)
        model = run.models[r.name]
        test = evaluate_loss(model, run.splits["test"], cfg.eval_batch_size, cfg.input_noise, cfg.seed)
        val = evaluate_loss(model, run.splits["val"], cfg.eval_batch_size, cfg.input_noise, cfg.seed)
        assert test["loss"] == pytest.approx(r.test_loss, abs=1e-6)
        assert val["loss"] == pytest.approx(r.history[-1]["val_loss"], abs=1e-6)
    assert run.splits["train"].class_names == [str(i) for i in range(10)]


def test_models_load_lazily_in_eval_mode_and_are_cached(run):
    assert "not loaded yet" in repr(run.models) and len(run.models) == 4
    model = run.models["stacked-bs32"]
    assert not model.training and not any(m.training for m in model.modules())
    assert run.models["stacked-bs32"] is model
    assert "stacked-bs32 (not loaded yet)" not in repr(run.models)
    with pytest.raises(KeyError, match="stacked-bs64"):
        run.models["stacked-bs64"]


def test_create_model_with_the_run_seed_reproduces_the_run(run):
    """create_model(name, seed=run seed) starts from the CLI's initial weights: fitting it on
    .splits with the run's settings gives the checkpoint and the history bit for bit. The
    global RNG is not touched."""
    r = run.record("stacked-bs256")
    shape = tuple(run.splits["train"].x.shape[1:])
    state = torch.random.get_rng_state()
    a = create_model(r.model, shape, seed=r.seed, **r.params)
    b = create_model(r.model, shape, seed=r.seed, **r.params)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    hist = fit(a, {"train": run.splits["train"], "val": run.splits["val"]}, run.train_config(r.name))
    assert [e["val_loss"] for e in hist.epochs] == [e["val_loss"] for e in r.history]
    trained = run.models[r.name].state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in a.state_dict().items())


def test_an_incomplete_folder_reads_alike(run, folder, tmp_path):
    """A study interrupted after two runs: its records so far, the same splits, its models."""
    part = tmp_path / "qs.incomplete"
    shutil.copytree(folder, part)
    metrics = json.loads((part / "metrics.json").read_text())
    metrics["runs"], metrics["complete"] = metrics["runs"][:2], False
    (part / "metrics.json").write_text(json.dumps(metrics))
    for name in ("sparse-bs32", "sparse-bs256"):
        (part / "checkpoints" / f"{name}.safetensors").unlink()
    (part / "resume.json").write_text(json.dumps({"source": "quickstart", "quick": True, "data_dir": None}))
    half = aelab.load_run(part)
    assert [r.name for r in half.records] == ["stacked-bs32", "stacked-bs256"]
    assert list(half.models) == ["stacked-bs32", "stacked-bs256"] and not half.complete
    for name, ds in run.splits.items():
        assert torch.equal(half.splits[name].x, ds.x) and torch.equal(half.splits[name].y, ds.y)
    text = repr(half)
    assert "incomplete, 2 of 4 runs" in text and "quick run" in text and "stacked-bs256" in text


def test_data_that_no_longer_match_are_refused(folder, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["dataset"]["splits"]["train"] += 1
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(AelabError, match="do not match what .* used \\(splits"):
        _ = aelab.load_run(other).splits


def test_not_a_run_folder(tmp_path):
    with pytest.raises(AelabError, match="not an aelab run folder"):
        aelab.load_run(tmp_path)
    with pytest.raises(AelabError, match="is not a folder"):
        aelab.load_run(tmp_path / "missing")


def test_the_api_is_listed():
    names = dir(aelab)
    for name in ("load_run", "open_run", "Run", "load_study", "run_study", "create_model",
                 "compare_reconstructions", "loss_curves", "RunRecord"):
        assert name in names
    assert aelab.load_run is not None and aelab.Run.__name__ == "Run"
