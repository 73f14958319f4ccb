"""The CLI: one sentence on stderr, exit code 2, and no run folder for bad input."""

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from aelab.cli import app

from .conftest import needs_fashion

runner = CliRunner()


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys, aelab.cli; sys.argv=['aelab', '--help']\ntry: aelab.cli.main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")
    assert time.perf_counter() - t0 < 5  # generous: the benchmark measures the real figure


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no-such-study"], "Unknown study 'no-such-study'"),
        (["run", "quickstart", "--set", "train.epochs=-1"], "train.epochs = -1 is not allowed"),
        (["run", "quickstart", "--set", "train.batchsize=3"], "Unknown key 'train.batchsize'"),
        (["run", "quickstart", "--set", "data.dataset='fashion-mnist'", "--data-dir", "."], "does not hold the fashion-mnist IDX files"),
        (["run", "quickstart", "--jobs", "0"], "--jobs '0' is not allowed"),
        (["run", "quickstart", "--executor", "spark"], "--executor 'spark' is not allowed"),
        (["run", "--resume", "nowhere.incomplete"], "is not one"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_no_folder(tmp_path, args, message):
    with_out = args[0] == "run" and "--resume" not in args
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "run")] if with_out else args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_corrupt_data_file_is_named(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / stem).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")  # says 9 bytes, holds 3
    result = runner.invoke(app, ["run", "fashion-shoes", "--data-dir", str(d), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "train-images-idx3-ubyte is truncated" in result.stderr
    assert not (tmp_path / "run").exists()


def test_list_and_show():
    from aelab.config import builtin_studies

    out = runner.invoke(app, ["list"])
    assert out.exit_code == 0 and "fashion-shoes" in out.stdout and "quickstart" in out.stdout
    assert "Sparse codes for classification on the full" in out.stdout  # sparse-codes-fashion
    # one line per study (issue 21: whole paragraphs, measured figures included); show has them
    rows = [line for line in out.stdout.splitlines() if line.startswith("│ ")]
    assert len(rows) == len(builtin_studies()) and not any("minutes" in r or "seconds" in r for r in rows)
    assert "│ fashion-shoes " in out.stdout
    show = runner.invoke(app, ["show", "fashion-shoes"])
    assert show.exit_code == 0 and "sparse-bs256: model stacked, epochs 50, batch 256, nadam lr 0.0001" in show.stdout
    assert "2 runs (auto): stacked-bs32, sparse-bs32" in show.stdout  # the stacked groups
    off = runner.invoke(app, ["show", "fashion-shoes", "--set", "train.vectorize=off"])
    assert off.exit_code == 0 and "Stacked groups" not in off.stdout
    quick = runner.invoke(app, ["show", "quickstart"])
    assert "about 10 seconds on a laptop CPU" in " ".join(quick.stdout.split())
    bad = runner.invoke(app, ["show", "fashion-shoes", "--quick", "--set", "train.epochs=0"])
    assert bad.exit_code == 2 and "train.epochs = 0 is not allowed" in bad.stderr  # the checks of run


def test_quickstart_end_to_end_quick(tmp_path):
    """The README's main job on the embedded digits, with a reduced budget (and --threads)."""
    import torch

    threads = torch.get_num_threads()
    try:
        result = runner.invoke(app, ["run", "quickstart", "--quick", "--threads", "1", "--out", str(tmp_path / "qs")])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "qs" / "metrics.json").read_text())
    assert m["environment"]["threads"] == 1
    assert [r["name"] for r in m["runs"]] == ["stacked-bs32", "stacked-bs256", "sparse-bs32", "sparse-bs256"]
    assert all(r["status"] == "completed" and r["epochs_run"] == 2 for r in m["runs"])
    assert "Class distribution" in (tmp_path / "qs" / "console.log").read_text()


@needs_fashion
def test_fashion_shoes_end_to_end_quick(tmp_path):
    """SPEC 1.1 on the real Fashion-MNIST with a reduced budget (2,100 images, 3 epochs)."""
    out = tmp_path / "shoes"
    result = runner.invoke(app, ["run", "fashion-shoes", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    log = (out / "console.log").read_text()
    for text in ("Sandal", "Sneaker", "Ankle boot", "Trainable params: 428,354", "Comparison:", "Results"):
        assert text in log, text
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"]["class_names"] == ["Sandal", "Sneaker", "Ankle boot"]
    assert m["dataset"]["splits"] == {"train": 1500, "val": 300, "test": 300}
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"loss_curves.png", "reconstructions-stacked-bs256.png", "reconstructions-sparse-bs256.png"} <= figs
    from aelab.runs import load_checkpoint

    model = load_checkpoint(out / "checkpoints" / "sparse-bs256.safetensors")
    assert model.activity_l1 == 1e-6
