"""Shared fixtures: small real data, an isolated cache, and the Fashion-MNIST marker."""

from pathlib import Path

import pytest
import torch

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST IDX files absent (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real cache or AELAB_DATA."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("AELAB_DATA", raising=False)


@pytest.fixture(scope="session")
def digits5k():
    from aelab.data import load_dataset

    return load_dataset("mnist-5k")


@pytest.fixture
def tiny_splits(digits5k):
    """600 real digits split 4:1:1, small enough for a few epochs in a second."""
    from aelab.data import limit_per_class, stratified_split

    return stratified_split(limit_per_class(digits5k, 600, seed=0), [4, 1, 1], seed=0)


@pytest.fixture
def seeded():
    torch.manual_seed(0)
