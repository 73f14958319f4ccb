""".npz files (datasets.npz), hostile ones included (issue 11): each is one DataError naming the
file, refused before anything the size of its claims is allocated or decompressed."""

import gzip
import io
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
import torch

from aelab import datasets as D
from aelab.errors import DataError

from .conftest import idx_bytes, write_idx_set


def refused(path, match: str, loader=None):
    """Load ``path`` and return the DataError, which must name the file and match ``match``."""
    with pytest.raises(DataError, match=match) as err:
        (loader or D.load_dataset)(str(path))
    assert path.name in str(err.value)
    assert "\n" not in str(err.value)  # one sentence, no traceback text
    return err.value


@pytest.fixture
def never_read(monkeypatch):
    """Fails the test if any .npy payload is decoded: refusals must come from the claims."""
    def boom(*a, **k):
        raise AssertionError("an array was read although its claims should have been refused")

    monkeypatch.setattr(np.lib.format, "read_array", boom)


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


def test_truncated_npz(tmp_path):
    np.savez(tmp_path / "full.npz", x=np.zeros((50, 8, 8), np.uint8))
    raw = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    refused(tmp_path / "cut.npz", "cannot be read as .npz")


def test_npz_with_a_bad_crc(tmp_path):
    x = np.full((50, 8, 8), 7, np.uint8)
    np.savez(tmp_path / "crc.npz", x=x)  # stored, not deflated: flip one pixel byte in place
    raw = bytearray((tmp_path / "crc.npz").read_bytes())
    at = raw.index(bytes(x[:4].reshape(-1)))
    raw[at + 10] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(raw))
    refused(tmp_path / "crc.npz", "CRC")


def test_npy_renamed_npz(tmp_path):
    np.save(tmp_path / "arr.npy", np.zeros((5, 4, 4), np.uint8))
    (tmp_path / "arr.npy").rename(tmp_path / "arr.npz")
    refused(tmp_path / "arr.npz", "single .npy array, not a .npz")


def test_not_a_zip_at_all(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    refused(tmp_path / "text.npz", "cannot be read as .npz")


def test_empty_npz(tmp_path):
    np.savez(tmp_path / "empty.npz")
    refused(tmp_path / "empty.npz", "holds no arrays")
    np.savez(tmp_path / "none.npz", x=np.zeros((0, 4, 4), np.uint8))
    refused(tmp_path / "none.npz", "holds no images")


def test_object_arrays_are_refused_without_unpickling(tmp_path, never_read):
    class Boom:
        def __reduce__(self):
            return (print, ("unpickled!",))

    np.savez(tmp_path / "obj.npz", x=np.array([Boom(), 1], dtype=object))
    refused(tmp_path / "obj.npz", "array 'x' holds object values")
    np.savez(tmp_path / "objy.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([Boom(), 1], dtype=object))
    refused(tmp_path / "objy.npz", "array 'y' holds object values")


def test_string_images_are_refused(tmp_path, never_read):
    np.savez(tmp_path / "str.npz", x=np.array([["a", "b"], ["c", "d"]]))
    refused(tmp_path / "str.npz", "array 'x' holds <U1 values")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_pixels_are_refused_by_name(tmp_path, bad):
    x = np.full((4, 5, 5), 0.5, np.float32)
    x[2, 1, 1] = bad
    np.savez(tmp_path / "nan.npz", x=x)
    refused(tmp_path / "nan.npz", "1 pixel values are NaN or infinite")


def test_nan_labels_and_labels_of_wrong_length(tmp_path):
    x = np.zeros((4, 5, 5), np.uint8)
    np.savez(tmp_path / "ynan.npz", x=x, y=np.array([0, 1, np.nan, 1]))
    refused(tmp_path / "ynan.npz", "NaN or infinite")
    np.savez(tmp_path / "short.npz", x=x, y=np.array([0, 1, 1]))
    refused(tmp_path / "short.npz", "'y' has 3 labels for 4 images")
    folder = tmp_path / "idx"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(9, np.uint8))))
    with pytest.raises(DataError, match="10 images, labels of shape \\(9,\\)") as err:
        D.load_dataset("mnist", "test", data_dir=folder)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)


def _npz_claiming(path, shape, payload_bytes: int, declared: int) -> None:
    """A .npz whose x.npy header claims ``shape`` (uint8) and whose zip directory declares
    ``declared`` uncompressed bytes (a ZIP64 size), holding ``payload_bytes`` of deflated zeros:
    what a zip bomb looks like, written by hand as no zip writer will lie about sizes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    data = buf.getvalue() + bytes(payload_bytes)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp = packer.compress(data) + packer.flush()
    name, crc, big = b"x.npy", zlib.crc32(data), 0xFFFFFFFF
    extra = struct.pack("<HHQQ", 1, 16, declared, len(comp))  # ZIP64: sizes, then compressed
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 8, 0, 0, crc, big, big, len(name), len(extra))
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, 8, 0, 0, crc, big, big,
                          len(name), len(extra), 0, 0, 0, 0, 0)
    body = local + name + extra + comp
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name) + len(extra), len(body), 0)
    path.write_bytes(body + central + name + extra + end)


def test_npz_that_expands_to_gigabytes_is_refused_before_reading(tmp_path, monkeypatch, never_read):
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", str(4 * 10**9))  # what a 16 GB machine allows
    shape = (94_000, 100_000)  # 9.4 GB of pixels claimed by a small file
    _npz_claiming(tmp_path / "bomb.npz", shape, 2_000_000, 9_400_000_000 + 128)
    with zipfile.ZipFile(tmp_path / "bomb.npz") as zf:  # a valid archive that claims 9.4 GB
        assert zf.getinfo("x.npy").file_size == 9_400_000_128
    assert (tmp_path / "bomb.npz").stat().st_size < 50_000
    start = time.perf_counter()
    err = refused(tmp_path / "bomb.npz", r"would take 47.0 GB in memory, more than the 4.0 GB allowed")
    assert time.perf_counter() - start < 2 and "AELAB_MAX_DATA_BYTES" in str(err)


def test_npz_whose_header_and_size_disagree(tmp_path, never_read):
    _npz_claiming(tmp_path / "liar.npz", (100_000, 100_000), 1000, 1000 + 128)
    refused(tmp_path / "liar.npz", "array 'x' is corrupt .*shape \\(100000, 100000\\)")


def test_a_real_compressed_npz_over_the_limit(tmp_path, monkeypatch, never_read):
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((1000, 100, 100), np.uint8))  # 10 MB
    assert (tmp_path / "zeros.npz").stat().st_size < 100_000
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", "20000000")
    refused(tmp_path / "zeros.npz", "its arrays would take 50 MB in memory, more than the 20 MB")
    monkeypatch.undo()  # read_array back, no limit set: the same file loads
    assert D.load_dataset(str(tmp_path / "zeros.npz")).x.shape == (1000, 1, 100, 100)
