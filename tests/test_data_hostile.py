"""Hostile data files (issue 11): each is one DataError naming the file and what is wrong,
refused before anything the size of its claims is allocated or decompressed."""

import gzip
import io
import os
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest

from aelab import data as D
from aelab import datafiles
from aelab.errors import DataError

from .test_data import idx_bytes, write_idx_set


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


def test_memory_limit_default_and_override(monkeypatch):
    monkeypatch.delenv("AELAB_MAX_DATA_BYTES", raising=False)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert datafiles.max_data_bytes() == ram // 4
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", "2e9")
    assert datafiles.max_data_bytes() == 2 * 10**9
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv("AELAB_MAX_DATA_BYTES", bad)
        with pytest.raises(DataError, match="AELAB_MAX_DATA_BYTES must be a positive number"):
            datafiles.max_data_bytes()


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def test_png_claiming_100000_by_100000_pixels(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "0.png")
    (tmp_path / "a" / "1.png").write_bytes(_png_header_only(100_000, 100_000))
    start = time.perf_counter()
    with pytest.raises(DataError, match="1.png cannot be read .*decompression bomb"):
        D.load_dataset(str(tmp_path))  # Pillow's own guard, raised as an error
    assert time.perf_counter() - start < 2


def test_image_sizes_are_checked_before_decoding(tmp_path, monkeypatch):
    from PIL import Image

    # 81 Mpixels: below Pillow's guard; the header-only file would fail if it were decoded.
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "0.png")
    (tmp_path / "a" / "1.png").write_bytes(_png_header_only(9000, 9000))
    with pytest.raises(DataError, match="1.png is 9000×9000 pixels but .*0.png is 8×8"):
        D.load_dataset(str(tmp_path))
    (tmp_path / "a" / "0.png").unlink()
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", str(10**8))
    with pytest.raises(DataError, match=r"1.png: 1 images of 9000×9000 pixels would take 648 MB"):
        D.load_dataset(str(tmp_path))


def test_idx_header_claiming_absurd_sizes(tmp_path, monkeypatch):
    head = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (100_000, 100_000, 100_000))
    (tmp_path / "raw-idx3-ubyte").write_bytes(head + bytes(1000))
    (tmp_path / "raw-idx3-ubyte.gz").write_bytes(gzip.compress(head + bytes(1000)))
    start = time.perf_counter()
    with pytest.raises(DataError, match="raw-idx3-ubyte is truncated .*shape \\(100000, 100000, 100000\\)"):
        datafiles.read_idx(tmp_path / "raw-idx3-ubyte")
    with pytest.raises(DataError, match="raw-idx3-ubyte.gz is truncated or corrupt"):
        datafiles.read_idx(tmp_path / "raw-idx3-ubyte.gz")
    assert time.perf_counter() - start < 1


def test_idx_gzip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    bomb = gzip.compress(idx_bytes(np.zeros((200, 300, 500), np.uint8)))  # 30 MB of zeros
    assert len(bomb) < 100_000
    (tmp_path / "bomb-idx3-ubyte.gz").write_bytes(bomb)
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", str(10**8))
    with pytest.raises(DataError, match="bomb-idx3-ubyte.gz: shape \\(200, 300, 500\\) would take 150 MB in memory, more than the 100 MB"):
        datafiles.read_idx(tmp_path / "bomb-idx3-ubyte.gz")
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", str(10**9))
    assert datafiles.read_idx(tmp_path / "bomb-idx3-ubyte.gz").shape == (200, 300, 500)
