"""Folders of images (datasets.folder): labels from subfolders, sizes checked before decoding."""

import struct
import time
import zlib

import numpy as np
import pytest
import torch

from aelab import datasets as D
from aelab.errors import DataError


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
