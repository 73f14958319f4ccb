"""Each reproducer of the hostile-input issue, as a regression test: names confined, every
setting checked when the study loads (with --quick or not), budgets before allocation, crafted
checkpoints refused with one sentence before anything is built, exit codes that tell the truth,
and output folders that fail at once (or keep finished work) with one sentence."""

from __future__ import annotations

import copy
import errno
import json
import os
import pickle
import re
import time
from pathlib import Path

import psutil
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import Limits, load_study, read_study_file
from aelab.errors import AelabError, ConfigError

LIMITS = Limits(max_runs=1000, max_memory=8 * 2**30)
cli = CliRunner()


def study(tmp_path, name="quickstart", change=None, overrides=(), quick=False, text=None):
    """Load a built-in study changed by ``change(table)`` (or the file ``text``) from a file."""
    path = tmp_path / "study.toml"
    if text is None:
        d = copy.deepcopy(read_study_file(name)[0])
        if change:
            change(d)
        text = tomli_w.dumps(d)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_study(str(path), quick=quick, overrides=list(overrides), limits=LIMITS)


def step_of(d, kind) -> dict:
    """The first [[steps]] entry of ``kind`` (the built-in studies change; their kinds stay)."""
    return next(s for s in d["steps"] if s["kind"] == kind)


def refused(tmp_path, pattern, **kw):
    """The study is refused with one sentence matching ``pattern``; returns the message."""
    with pytest.raises(AelabError) as info:
        study(tmp_path, **kw)
    text = str(info.value)
    assert "\n" not in text and text.endswith("."), text
    assert re.search(pattern, text), text
    return text


def one_line_exit_2(result):
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("aelab: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------- names are confined


@pytest.mark.parametrize("name", ["/abs/dir/victim", "../../../../dir/victim", "[/bold]", "$\\alpha^$",
                                  "", "a" * 81, ".hidden", "名前", "a b", "new\nline"])
def test_model_names_that_are_not_slugs_are_refused(tmp_path, name):
    refused(tmp_path, r"models\[0\]\.name = .* is not allowed: names become file names",
            change=lambda d: d["models"][0].update(name=name))


@pytest.mark.parametrize("name", ["../../elsewhere", "/abs/x", "[/bold]"])
def test_study_names_that_are_not_slugs_are_refused(tmp_path, name):
    refused(tmp_path, r"^name = .* is not allowed: names become file names",
            change=lambda d: d.update(name=name))


def test_a_run_name_from_a_sweep_is_a_slug_too(tmp_path):
    refused(tmp_path, r"models\[0\].*run name.*is not allowed",
            change=lambda d: d["models"][0].update(params={"activation": ["relu", "tanh"]},
                                                   name="a" * 78))


# ---------------------------------------------------------------- late validation, now at load


def test_step_runs_must_name_runs(tmp_path):
    refused(tmp_path, r"steps\[\d+\]\.runs: no run or model named 'nope'; there are: sparse",
            change=lambda d: d["steps"].append({"kind": "reconstructions", "runs": ["nope"]}))


def test_step_defaults_select_runs_after_a_sweep(tmp_path):
    """code_images, latent_space and denoising pick their runs by [[models]] name, so a sweep
    that renames the runs (conv-bs128, conv-bs256) still leaves them something to show."""
    from types import SimpleNamespace

    from aelab.steps import StudyContext

    s = study(tmp_path, "keras-tour", overrides=["train.batch_size=[128, 256]"] + [
        f"models.{m}.train.batch_size=[64, 128]" for m in ("conv", "denoising", "vae")])
    ctx = StudyContext(s, {}, [SimpleNamespace(name=r.name, label=r.label, sweep=r.sweep) for r in s.runs],
                       {}, None, None)
    for step in s.steps:
        if step.kind in ("code_images", "latent_space", "denoising"):
            chosen = [r.name for r in ctx.selected(step.params["runs"])]
            assert len(chosen) == 2 and all(n.startswith(step.params["runs"][0] + "-") for n in chosen)


def test_linear_probe_needs_a_validation_split(tmp_path):
    refused(tmp_path, r"steps\[\d+\] \(linear_probe\) needs a validation split, but data.split = "
            r"\[5.0, 1.0\] has none", name="sparse-codes", change=lambda d: d["data"].update(split=[5, 1]))


@pytest.mark.parametrize("key, value, pattern", [
    ("score", "zz", r"steps\[\d+\]\.score = 'zz' is not allowed: it should be 'mse' or 'bce'"),
    ("dataset", "nope-ds", r"steps\[\d+\]\.dataset = 'nope-ds' is not a known dataset"),
    ("dataset", "", r"steps\[\d+\]\.dataset = '' is not allowed"),
    ("part", "val", r"steps\[\d+\]\.part = 'val' is not allowed: it should be 'train', 'test' or 'all'"),
])
def test_bad_novelty_settings(tmp_path, key, value, pattern):
    refused(tmp_path, pattern, name="novelty", change=lambda d: step_of(d, "novelty").update({key: value}))


def test_novelty_classes_are_checked_at_load(tmp_path):
    """Knowable before training for built-in datasets: something must be left out of training
    to be novel, and the scored dataset must hold the training classes."""
    refused(tmp_path, r"steps\[\d+\] \(novelty\) needs classes left out of training.*all 10 classes of "
            r"mnist-5k; set data\.classes", change=lambda d: d["steps"].append({"kind": "novelty"}))
    refused(tmp_path, r"\(novelty\) scores digits, whose classes do not include the training classes "
            r"Sandal, Sneaker, Ankle boot", name="novelty",
            change=lambda d: step_of(d, "novelty").update(dataset="digits"))
    assert study(tmp_path, "novelty", change=lambda d: d["data"].update(dataset="mnist", classes=[1, 2]))


@pytest.mark.parametrize("name, kind, key, value, pattern", [
    ("quickstart", "reconstructions", "n", 0, r"steps\[\d+\]\.n = 0 is not allowed: it should be greater than or equal to 1"),
    ("sparse-codes", "linear_probe", "Cs", [-1], r"steps\[\d+\]\.Cs\[0\] = -1 is not allowed: it should be greater than 0"),
    ("sparse-codes", "finetune", "epochs", 0, r"steps\[\d+\]\.epochs = 0 is not allowed"),
    ("sparse-codes", "finetune", "head", [0], r"steps\[\d+\]\.head\[0\] = 0 is not allowed"),
    ("sparse-codes", "sparsity", "threshold", float("nan"), r"steps\[\d+\]\.threshold = nan is not allowed"),
    ("quickstart", "loss_curves", "log", "yes", r"steps\[\d+\]\.log = 'yes' is not allowed"),
    ("quickstart", "loss_curves", "count", 3, r"Unknown key 'steps\[\d+\]\.count'; allowed here: runs, log"),
])
def test_bad_step_settings(tmp_path, name, kind, key, value, pattern):
    refused(tmp_path, pattern, name=name, change=lambda d: step_of(d, kind).update({key: value}))


@pytest.mark.parametrize("change, pattern", [
    (lambda d: d.update(data=5), r"^data = 5 is not allowed: it should be a valid dictionary"),
    (lambda d: d["models"][0].update(train={"epochs": 0}), r"models\[0\]\.train\.epochs = 0 is not allowed"),
    (lambda d: d["train"].update(eval_batch_size=0), r"train\.eval_batch_size = 0 is not allowed"),
])
def test_quick_does_not_skip_checks(tmp_path, change, pattern):
    """What is wrong in the file is wrong with --quick too, even where [quick] replaces it."""
    refused(tmp_path, pattern, change=change)
    refused(tmp_path, pattern, change=change, quick=True)


def test_quick_table_is_checked_without_quick(tmp_path):
    refused(tmp_path, r"^quick must be a table, got 5", change=lambda d: d.update(quick=5))
    refused(tmp_path, r"quick\.train\.epochs = 0 is not allowed",
            change=lambda d: d["quick"].update(train={"epochs": 0}))
    refused(tmp_path, r"quick\.steps: unknown step 'nope'",
            change=lambda d: d["quick"].update(steps={"nope": {"n": 1}}))
    refused(tmp_path, r"quick\.steps\.reconstructions\.n = 0 is not allowed",
            change=lambda d: d["quick"].update(steps={"reconstructions": {"n": 0}}))
    refused(tmp_path, r"Unknown key 'quick\.models'", change=lambda d: d["quick"].update(models=[]))


# ---------------------------------------------------------------- tracebacks, now sentences


@pytest.mark.parametrize("name, change, pattern", [
    ("quickstart", lambda d: d["models"][0].update(params={"hidden": "abc"}),
     r"models\[0\]\.params\.hidden = 'abc' is not allowed: it should be a valid list"),
    ("keras-tour", lambda d: d["models"][4].update(params={"filters": 0}),
     r"models\[4\]\.params\.filters = 0 is not allowed: it should be greater than or equal to 1"),
    ("quickstart", lambda d: d["models"][0].update(params={"loss": [["bce"]]}),
     r"models\[0\]\.params\.loss = \['bce'\] is not allowed"),
    ("quickstart", lambda d: d["steps"].append({"kind": []}), r"steps\[\d+\]\.kind: unknown step \[\]"),
    ("sparse-codes", lambda d: d["models"][1]["params"].update(rho="x"),
     r"models\[1\]\.params\.rho = 'x' is not allowed: it should be a valid number"),
    ("quickstart", lambda d: d["data"].update(split=[float("nan"), 1, 1]),
     r"data\.split\[0\] = nan is not allowed: it should be a finite number"),
    ("quickstart", lambda d: d.update(steps=5), r"^steps = 5 is not allowed: it should be a valid list"),
    ("quickstart", lambda d: d["data"].update(dataset=""), r"data\.dataset = '' is not allowed"),
    ("quickstart", lambda d: d["train"].update(early_stopping="x"),
     r"train\.early_stopping = 'x' is not allowed: it should be a table"),
    ("quickstart", lambda d: d["train"]["early_stopping"].update(monitor="val_kl"),
     r"monitor = 'val_kl' is not a value run stacked-bs32 produces; choose one of: train_loss"),
    ("quickstart", lambda d: d["train"].update(epochs=[]), r"train\.epochs = \[\] is an empty sweep"),
])
def test_tracebacks_are_now_sentences(tmp_path, name, change, pattern):
    refused(tmp_path, pattern, name=name, change=change)


def test_a_one_value_list_is_a_sweep_of_one(tmp_path):
    """``loss = ["bce"]`` is a sweep with one value: the run is renamed, which the study's
    step that names a run by its full name then reports."""
    refused(tmp_path, r"steps\[\d+\]\.runs: no run or model named 'stacked-bs256'",
            change=lambda d: d["models"][0].update(params={"loss": ["bce"]}))


@pytest.mark.parametrize("override, pattern", [
    ("models.stacked=5", r"Override models\.stacked must set a key inside the model"),
    ("models.nope.params.hidden=[1]", r"no model with name 'nope'; there are: stacked, sparse"),
    ("steps=5", r"^steps = 5 is not allowed"),
    ("train.epochs.x=1", r"Override train\.epochs\.x goes through 'epochs', which is not a table"),
    ("noequals", r"Override 'noequals' must look like key\.path=value"),
    ("models.nope\nx.params.k=1", r"no model with name 'nope\\\\nx'"),
    ("a..b=1", r"has an empty key"),
    ("train.epochs=" + "[" * 5000 + "]" * 5000, r"train\.epochs = '\[\[\[.*is not allowed"),
])
def test_bad_overrides(tmp_path, override, pattern):
    refused(tmp_path, pattern, overrides=[override])


def test_models_that_is_not_a_list_with_an_override(tmp_path):
    refused(tmp_path, r"Override models\.x\.params\.k: models must be a list of tables",
            change=lambda d: d.update(models=5), overrides=["models.x.params.k=1"])


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_study_files_that_are_not_utf8(tmp_path, encoding):
    text = tomli_w.dumps(read_study_file("quickstart")[0]).replace("stacked", "stäcked").encode(encoding)
    refused(tmp_path, r"study\.toml is not UTF-8 text \(byte 0x.. at position \d+\); save it as UTF-8",
            text=text)


def test_a_bom_is_fine(tmp_path):
    assert study(tmp_path, text=b"\xef\xbb\xbf" + tomli_w.dumps(read_study_file("quickstart")[0]).encode())


def test_arrays_nested_100000_deep(tmp_path):
    text = 'name = "x"\nseed = ' + "[" * 100_000 + "]" * 100_000 + "\n"
    refused(tmp_path, r"nests arrays or tables too deeply", text=text)


def test_a_1500_long_extends_chain(tmp_path):
    for i in range(1500):
        (tmp_path / f"s{i}.toml").write_text(f'extends = "s{i + 1}.toml"\n')
    (tmp_path / "s1500.toml").write_text(tomli_w.dumps(read_study_file("quickstart")[0]))
    refused(tmp_path, r"more than 16 studies extend each other", text='extends = "s0.toml"\n')


def test_extends_cycle_and_strange_targets(tmp_path):
    (tmp_path / "b.toml").write_text('extends = "study.toml"\n')
    refused(tmp_path, r"must name another study \(one that does not extend it back\)",
            text='extends = "b.toml"\n')
    for target in ["a" * 5000, "/", "/dev/zero", 5]:
        refused(tmp_path, r"Unknown study|must name another study",
                text=tomli_w.dumps({"extends": target}))


def test_a_huge_study_file_is_not_read_whole(tmp_path):
    refused(tmp_path, r"larger than 1024 KB", text=b'name = "x"\n#' + b"x" * (2 << 20))


# ---------------------------------------------------------------- budgets before allocation


def test_float_sizes_are_refused(tmp_path):
    refused(tmp_path, r"models\[0\]\.params\.hidden\[0\] = 1000000\.0 is not allowed: it should be a valid integer",
            change=lambda d: d["models"][0].update(params={"hidden": [1e6, 1e6]}))


def test_a_huge_model_is_refused_with_its_size_before_allocation(tmp_path):
    rss = psutil.Process().memory_info().rss
    t = time.perf_counter()
    text = refused(tmp_path, r"models\[0\] \(stacked, 2,001,571,000,784 parameters\) needs about "
                   r"[\d.]+ TB to train at batch \d+, more than the limit of 8\.0 GB",
                   change=lambda d: d["models"][0].update(params={"hidden": [1000000, 1000000]}))
    assert time.perf_counter() - t < 5, text
    assert psutil.Process().memory_info().rss - rss < 500 * 2**20  # nothing of its 8 TB allocated


def test_a_200_cubed_sweep_is_refused_at_once_with_the_cap(tmp_path):
    t = time.perf_counter()
    refused(tmp_path, r"expands into more than 1,000 runs \(models\[0\] alone gives 8,000,000\).*AELAB_MAX_RUNS",
            name="sparse-codes", change=lambda d: (
                d["models"][2]["params"].update(k=list(range(1, 201))),
                d["train"].update(batch_size=list(range(1, 201)), epochs=list(range(1, 201))),
                d["models"].insert(0, d["models"].pop(2))))
    assert time.perf_counter() - t < 5


def test_the_run_cap_can_be_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_MAX_RUNS", "3")
    with pytest.raises(ConfigError, match="more than 3 runs"):
        load_study("quickstart")
    monkeypatch.setenv("AELAB_MAX_RUNS", "x")
    with pytest.raises(ConfigError, match="AELAB_MAX_RUNS=.x. is not allowed"):
        load_study("quickstart")


# ---------------------------------------------------------------- settings that cannot work


@pytest.mark.parametrize("key, value, pattern", [
    ("eval_batch_size", -1, r"train\.eval_batch_size = -1 is not allowed"),
    ("eval_batch_size", 0, r"train\.eval_batch_size = 0 is not allowed"),
    ("learning_rate", 1e308, r"train\.learning_rate = 1e\+308 is not allowed"),
    ("learning_rate", float("inf"), r"train\.learning_rate = inf is not allowed"),
    ("batch_size", True, r"train\.batch_size = True is not allowed"),
    ("seed", -1, r"train\.seed = -1 is not allowed"),
])
def test_train_settings_that_cannot_work_are_refused_at_load(tmp_path, key, value, pattern):
    refused(tmp_path, pattern, change=lambda d: d["train"].update({key: value}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_at_load(tmp_path):
    refused(tmp_path, r"train\.device = 'cuda', but PyTorch sees no CUDA GPU on this machine",
            change=lambda d: d["train"].update(device="cuda"))


@pytest.mark.parametrize("dataset", ["~nouser/x", "/etc/passwd", "missing.npz", "/" + "a" * 300])
def test_dataset_paths_that_cannot_be_read(tmp_path, dataset):
    """A dataset that looks like a path is checked when the data load (before any folder):
    one sentence, exit 2, nothing written."""
    s = study(tmp_path, change=lambda d: d["data"].update(dataset=dataset))
    assert s.data.dataset == dataset
    path = tmp_path / "study.toml"
    before = tree(tmp_path)
    line = one_line_exit_2(cli.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")]))
    assert re.search(r"cannot be read as a path|neither a \.npz file nor a folder|does not exist|"
                     r"not a known dataset", line), line
    assert tree(tmp_path) == before


def test_a_long_dataset_name_is_refused_shortly(tmp_path):
    text = refused(tmp_path, r"data\.dataset = 'aaa.*\.\.\. is not a known dataset",
                   change=lambda d: d["data"].update(dataset="a" * 300))
    assert len(text) < 300


def test_show_runs_the_same_checks(tmp_path):
    path = tmp_path / "s.toml"
    d = read_study_file("sparse-codes")[0]
    step_of(d, "linear_probe")["Cs"] = [-1]
    path.write_text(tomli_w.dumps(d))
    line = one_line_exit_2(cli.invoke(app, ["show", str(path)]))
    assert re.search(r"steps\[\d+\]\.Cs\[0\] = -1 is not allowed", line)


# ---------------------------------------------------------------- crafted checkpoints


class _Exploit:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def good_checkpoint():
    from aelab.models import create_model
    from aelab.runs import checkpoint_bytes

    model = create_model("stacked", (1, 28, 28), seed=0, hidden=[8, 4])
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return checkpoint_bytes(model), state, dict(model.spec)


def _crafted(good_checkpoint, kind, marker):
    import io
    import struct

    from safetensors.torch import save

    good, state, spec = good_checkpoint

    def st(tensors=None, meta="spec", **changes):
        md = {"aelab": json.dumps({**spec, **changes})} if meta == "spec" else meta
        return save(tensors if tensors is not None else state, metadata=md)

    if kind == "torch.save":
        buf = io.BytesIO()
        torch.save({"x": _Exploit(marker)}, buf)
        return buf.getvalue()
    return {
        "huge spec": lambda: st(params={"hidden": [100000, 100000]}),
        "huge images": lambda: st(model="conv", params={}, input_shape=[1, 100000, 100000]),
        "no metadata": lambda: st(meta=None),
        "no aelab spec": lambda: st(meta={"format": "pt"}),
        "bad JSON": lambda: st(meta={"aelab": "{not json"}),
        "JSON nested deep": lambda: st(meta={"aelab": "[" * 100_000 + "]" * 100_000}),
        "spec is a list": lambda: st(meta={"aelab": "[1, 2]"}),
        "params a list": lambda: st(params=[1]),
        "input shape of strings": lambda: st(input_shape=["1", "28", "28"]),
        "input shape zero": lambda: st(input_shape=[0, 28, 28]),
        "model a number": lambda: st(model=5),
        "unknown model": lambda: st(model="nope"),
        "bad parameter": lambda: st(params={"hidden": "abc"}),
        "NaN parameter": lambda: st(params={"hidden": [8, 4], "activity_l1": float("nan")}),
        "tensor shape mismatch": lambda: st({**state, "encoder.1.weight": torch.zeros(8, 700)}),
        "extra tensor": lambda: st({**state, "extra": torch.zeros(1)}),
        "missing tensor": lambda: st({k: v for k, v in state.items() if k != "encoder.1.bias"}),
        "integer tensors": lambda: st({k: v.to(torch.int64) for k, v in state.items()}),
        "pickle": lambda: pickle.dumps(_Exploit(marker)),
        "truncated": lambda: good[: len(good) // 2],
        "header only": lambda: good[:8],
        "empty": lambda: b"",
        "header length 2**60": lambda: struct.pack("<Q", 2**60) + b"{}",
        "random bytes": lambda: bytes(range(256)) * 4,
    }[kind]()


CRAFTED = ["huge spec", "huge images", "no metadata", "no aelab spec", "bad JSON", "JSON nested deep",
           "spec is a list", "params a list", "input shape of strings", "input shape zero",
           "model a number", "unknown model", "bad parameter", "NaN parameter", "tensor shape mismatch",
           "extra tensor", "missing tensor", "integer tensors", "pickle", "torch.save", "truncated",
           "header only", "empty", "header length 2**60", "random bytes"]


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_checkpoints_are_refused_with_one_sentence(tmp_path, good_checkpoint, kind):
    from aelab.runs import load_checkpoint

    marker = tmp_path / "code-ran"
    path = tmp_path / "model.safetensors"
    path.write_bytes(_crafted(good_checkpoint, kind, marker))
    rss = psutil.Process().memory_info().rss
    with pytest.raises(AelabError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert text.startswith(f"Checkpoint {path} ") and "\n" not in text and text.endswith("?"), text
    assert not marker.exists()  # no code from the file ran
    assert psutil.Process().memory_info().rss - rss < 200 * 2**20  # nothing big was allocated


def test_the_checkpoint_that_claims_a_huge_model_is_refused_with_its_size(tmp_path, good_checkpoint):
    from aelab.runs import load_checkpoint

    path = tmp_path / "huge.safetensors"
    path.write_bytes(_crafted(good_checkpoint, "huge spec", None))
    t = time.perf_counter()
    with pytest.raises(AelabError, match=r"describes a model of 20,157,100,784 parameters, more than the 2,000,000,000"):
        load_checkpoint(path)
    assert time.perf_counter() - t < 5


def test_a_good_checkpoint_loads(tmp_path, good_checkpoint):
    from aelab.runs import load_checkpoint

    path = tmp_path / "good.safetensors"
    path.write_bytes(good_checkpoint[0])
    model = load_checkpoint(path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, good_checkpoint[1][k])


@pytest.mark.parametrize("where", ["missing", "folder"])
def test_a_checkpoint_that_is_not_a_file(tmp_path, where):
    from aelab.runs import load_checkpoint

    path = tmp_path if where == "folder" else tmp_path / "nope.safetensors"
    with pytest.raises(AelabError, match="does not exist or is not a file"):
        load_checkpoint(path)


# ---------------------------------------------------------------- runs: exit codes and folders

TINY = """
name = "tiny"
seed = 1
description = "{description}"
[data]
dataset = "{dataset}"
limit = 200
[train]
epochs = 1
batch_size = 64
[[models]]
name = "a"
model = "stacked"
params = {{ hidden = [16, 4] }}
[[models]]
name = "b"
model = "stacked"
params = {{ hidden = [8, 4] }}
[[steps]]
kind = "loss_curves"
"""


def tiny(tmp_path, description="a tiny study", dataset="mnist-5k"):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(description=description, dataset=dataset))
    return path


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run folder of the tiny study, for the report and compare cases."""
    tmp = tmp_path_factory.mktemp("finished")
    out = tmp / "out"
    result = cli.invoke(app, ["run", str(tiny(tmp)), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return out


def test_a_study_whose_runs_all_fail_exits_non_zero_and_stays_incomplete(tmp_path, monkeypatch):
    import aelab.train

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure in every run")

    monkeypatch.setattr(aelab.train, "fit", broken)
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(tiny(tmp_path)), "--out", str(out), "--quiet"])
    assert result.exit_code == 1, (result.stderr, result.exception)
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "all 2 runs failed" in lines[0], result.stderr
    assert not out.exists()
    runs = json.loads((tmp_path / "out.incomplete" / "metrics.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert all("simulated failure" in r["reason"] for r in runs)


def _read_only_location(tmp_path):
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        return locked / "out"
    if not Path("/sys").is_dir():
        pytest.skip("root and no /sys: no read-only location to try")
    return Path("/sys") / "aelab-test-out"  # even root cannot make folders in sysfs


@pytest.mark.parametrize("case", ["read-only", "under a file", "dangling symlink", "existing",
                                  "dot", "incomplete is a file"])
def test_unusable_output_folders_fail_before_training(tmp_path, case, monkeypatch):
    import aelab.train

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(aelab.train, "fit", never)
    if case == "read-only":
        out = _read_only_location(tmp_path)
    elif case == "under a file":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "sub" / "out"
    elif case == "dangling symlink":
        out = tmp_path / "out"
        out.symlink_to(tmp_path / "nowhere")
    elif case == "existing":
        out = tmp_path / "out"
        out.mkdir()
    elif case == "dot":
        out = Path(".")
    else:
        out = tmp_path / "out"
        (tmp_path / "out.incomplete").write_text("x")
    study_path = tiny(tmp_path)
    before = tree(tmp_path)
    line = one_line_exit_2(cli.invoke(app, ["run", str(study_path), "--out", str(out)]))
    assert re.search(r"not writable|Permission denied|Operation not permitted|Read-only|is a file|"
                     r"broken symbolic link|exists already|names no folder|in the way", line), line
    assert tree(tmp_path) == before


def test_a_second_run_into_the_same_out_fails_at_once(tmp_path, monkeypatch):
    """While one process writes ``out.incomplete`` (it holds the lock), a second one is refused
    before it loads data or trains; an abandoned one is offered to --resume."""
    import aelab.train
    from aelab.runs import RunFolder

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(aelab.train, "fit", never)
    out = tmp_path / "out"
    first = RunFolder.create(out)  # the first process, mid-study
    try:
        line = one_line_exit_2(cli.invoke(app, ["run", str(tiny(tmp_path)), "--out", str(out)]))
        assert "Another aelab process is writing" in line and "out.incomplete" in line
        with pytest.raises(AelabError, match="Another aelab process is writing"):
            RunFolder.create(out)
    finally:
        first.release()
    line = one_line_exit_2(cli.invoke(app, ["run", str(tiny(tmp_path)), "--out", str(out)]))
    assert "holds an unfinished run" in line and "--resume" in line


def test_a_full_disk_keeps_finished_work_and_says_so(tmp_path, monkeypatch):
    """The disk fills up after the first run finished: one sentence naming the error and how
    to continue; the first run's checkpoint and record stay; --resume then finishes the study."""
    import aelab.runs.folder

    real = aelab.runs.folder.atomic_write
    full = {"on": False}

    def write(path, data):
        if Path(path).name == "b.safetensors" and "checkpoints" in str(path):
            full["on"] = True
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(aelab.runs.folder, "atomic_write", write)
    out = tmp_path / "out"
    line = one_line_exit_2(cli.invoke(app, ["run", str(tiny(tmp_path)), "--out", str(out), "--quiet"]))
    incomplete = tmp_path / "out.incomplete"
    assert "No space left on device" in line and f"aelab run --resume {incomplete}" in line, line
    assert (incomplete / "checkpoints" / "a.safetensors").is_file()
    runs = json.loads((incomplete / "metrics.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["a"] and runs[0]["status"] == "completed"
    monkeypatch.setattr(aelab.runs.folder, "atomic_write", real)  # space made
    result = cli.invoke(app, ["run", "--resume", str(incomplete), "--quiet"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["a", "b"]


@pytest.mark.parametrize("resume_json", ["[1]", '{"data_dir": 5}', '{"quick": "yes"}', "{bad", "[" * 100_000])
def test_resume_of_a_damaged_folder(tmp_path, resume_json):
    folder = tmp_path / "out.incomplete"
    folder.mkdir()
    (folder / "study.toml").write_text(tiny(tmp_path).read_text())
    (folder / "resume.json").write_text(resume_json)
    line = one_line_exit_2(cli.invoke(app, ["run", "--resume", str(folder)]))
    assert "resume.json" in line and "cannot be resumed" in line, line


def test_report_on_a_truncated_metrics_json(tmp_path, finished):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    data = (folder / "metrics.json").read_bytes()
    (folder / "metrics.json").write_bytes(data[: len(data) // 2])
    line = one_line_exit_2(cli.invoke(app, ["report", str(folder)]))
    assert "metrics.json" in line and "damaged" in line


def test_compare_out_onto_an_existing_file(tmp_path, finished):
    target = tmp_path / "taken"
    target.write_text("mine")
    line = one_line_exit_2(cli.invoke(app, ["compare", str(finished), "--out", str(target)]))
    assert str(target) in line
    assert target.read_text() == "mine"


def test_console_text_is_not_markup(tmp_path):
    """A description, dataset path and class names full of rich markup and mathtext are printed
    and drawn as they are."""
    import numpy as np

    data = tmp_path / "[red]data[red] $x^$"
    data.mkdir()
    rng = np.random.default_rng(0)
    names = np.array(["[/bold]", "$\\alpha^$", "[link=file:///etc/passwd]c[/link]"])
    np.savez(data / "d.npz", x=rng.integers(0, 255, (150, 28, 28), dtype=np.uint8),
             y=np.arange(150) % 3, class_names=names)
    out = tmp_path / "out"
    desc = "[/bold] [red]not markup[/red] $\\\\alpha^$"
    result = cli.invoke(app, ["run", str(tiny(tmp_path, description=desc, dataset=str(data / "d.npz"))),
                              "--out", str(out), "--set",
                              "steps=[{kind='loss_curves'}, {kind='finetune', epochs=1}]"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    log = (out / "console.log").read_text()
    assert "test accuracy per class" in log  # the per-class table names the classes as text
    for text in ("[/bold] [red]not markup[/red] $\\alpha^$", "[red]data[red] $x^$", "$\\alpha^$",
                 "[link=file:///etc/passwd]c[/link]"):
        assert text in log, text
    assert (out / "figures" / "loss_curves.png").is_file()
