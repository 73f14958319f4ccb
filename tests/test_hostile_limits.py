"""Issue 21, items 14-15: budgets that hold (the environment's included), figure sizes bounded,
gzip bombs and empty IDX shapes refused, NaN checkpoints refused, Ray's absence before any folder."""

from __future__ import annotations

import gzip
import time

import pytest
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import Limits
from aelab.errors import AelabError, ConfigError

cli = CliRunner()


@pytest.mark.parametrize("name, value", [("AELAB_MAX_MEMORY_GB", "inf"), ("AELAB_MAX_MEMORY_GB", "nan"),
                                         ("AELAB_MAX_MEMORY_GB", "1e300"), ("AELAB_MAX_MEMORY_GB", "-1"),
                                         ("AELAB_MAX_RUNS", "100000000"), ("AELAB_MAX_RUNS", "0"),
                                         ("AELAB_MAX_RUNS", "1e3")])
def test_environment_budgets_are_parsed_and_capped(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name) as info:
        Limits.from_env()
    assert "\n" not in str(info.value)


def test_a_raised_budget_stays_within_this_machine(monkeypatch):
    import psutil

    monkeypatch.setenv("AELAB_MAX_MEMORY_GB", "1")
    monkeypatch.setenv("AELAB_MAX_RUNS", "5000")
    lim = Limits.from_env()
    assert (lim.max_memory, lim.max_runs) == (2**30, 5000)
    assert lim.max_memory <= psutil.virtual_memory().total


def test_a_huge_conv_batch_is_refused_on_the_meta_device():
    """Three 4,096-filter layers at batch 10^6: refused from shapes alone, nothing allocated."""
    import resource

    from aelab.models import inspect_model

    before, t = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    size = inspect_model("conv", {"filters": [4096, 4096, 4096]}, (1, 28, 28), 10**6, 64 * 2**30)
    assert size.bytes > 64 * 2**30
    assert time.perf_counter() - t < 3
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KB: < 0.5 GB more


@pytest.mark.parametrize("step", ["reconstructions", "latent_space", "denoising"])
def test_figure_steps_are_bounded(tmp_path, step):
    from aelab.config import load_study

    path = tmp_path / "s.toml"
    path.write_text(f'name = "s"\n[data]\ndataset = "mnist-5k"\n[[models]]\nname = "a"\nmodel = "stacked"\n'
                    f'[[steps]]\nkind = "{step}"\nn = 1000\n')
    with pytest.raises(AelabError, match="n"):
        load_study(str(path))


def test_a_gzip_bomb_is_not_hashed_for_minutes(tmp_path):
    from aelab.datasets._files import sha256_file

    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        chunk = bytes(1 << 20)
        for _ in range(200):  # 200 MB of zeros in a small file
            f.write(chunk)
    t = time.perf_counter()
    assert sha256_file(bomb, gunzip=True, limit=64 << 20) == ""
    assert time.perf_counter() - t < 5


def test_idx_images_of_a_zero_size_are_refused(tmp_path):
    from aelab.datasets.idx import read_idx

    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + (700).to_bytes(4, "big") + bytes(8))
    with pytest.raises(AelabError, match="zero size"):
        read_idx(path)


def test_a_checkpoint_of_nan_weights_is_refused_in_one_sentence(tmp_path):
    import torch

    from aelab.models import create_model
    from aelab.runs.checkpoints import load_checkpoint, save_checkpoint

    model = create_model("stacked", (1, 28, 28), hidden=[8, 4])
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_checkpoint(tmp_path / "m.safetensors", model)
    with pytest.raises(AelabError, match="NaN or infinite weights") as info:
        load_checkpoint(tmp_path / "m.safetensors")
    assert "\n" not in str(info.value)
    assert load_checkpoint(tmp_path / "m.safetensors", nonfinite=True) is not None  # a diverged run's


def test_ray_missing_leaves_no_folder(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", "quickstart", "--quick", "--executor", "ray", "--out", str(out)])
    assert result.exit_code == 2 and "needs Ray" in result.stderr
    assert list(tmp_path.iterdir()) == []
