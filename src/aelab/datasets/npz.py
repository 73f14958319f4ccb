""".npz files: x (uint8 or floats in [0, 1]), optional y (integers or strings) and class_names.

Every array is checked from the zip directory and its .npy header before a byte is
decompressed (a 2 MB file may claim gigabytes); object arrays are refused without unpickling.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ._base import FLOATS_KEPT, Dataset, scaled
from ._files import check_size, to_nchw


def _labels(y, names, n: int, path: Path):
    """Labels as int64 0..K-1: given class names index them; otherwise sorted unique values."""
    if y is None:
        return None, []
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DataError(f"{path}: 'y' has {len(y)} labels for {n} images; give one label per image.")
    if y.dtype.kind not in "biufUS" or (y.dtype.kind == "f" and not np.isfinite(y).all()):
        raise DataError(f"{path}: labels 'y' must be integers or strings, got {y.dtype}"
                        f"{' with NaN or infinite values' if y.dtype.kind == 'f' else ''}.")
    if names is not None:
        names = [str(s) for s in np.asarray(names).reshape(-1)]
        if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= len(names))):
            raise DataError(f"{path}: with 'class_names' given, 'y' must hold integers 0..{len(names) - 1}.")
        return torch.from_numpy(y.astype(np.int64)), names
    uniq, inv = np.unique(y, return_inverse=True)
    return torch.from_numpy(inv.astype(np.int64).reshape(-1)), [str(u) for u in uniq]


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, header bytes) of one .npy member, reading only its first bytes."""
    fmt = np.lib.format
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(f)
        else:
            shape, _, dtype = fmt._read_array_header(f, version)
        return shape, dtype, f.tell()


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """x (and y, class_names when present) of a .npz, each checked from the zip directory and
    its .npy header before a byte is decompressed: a 2 MB file may claim gigabytes."""
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise DataError(f"{path} is a single .npy array, not a .npz archive; save images and "
                            "labels with numpy.savez(path, x=..., y=...).")
    with zipfile.ZipFile(path) as zf:
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        if not members:
            raise DataError(f"{path} holds no arrays; save images and labels with numpy.savez(path, x=..., y=...).")
        if "x" not in members:
            raise DataError(f"{path} has no array named 'x' (arrays: {', '.join(members)}); "
                            "save the images as x=..., labels as y=....")
        wanted = [k for k in ("x", "y", "class_names") if k in members]
        total = 0
        for key in wanted:
            shape, dtype, header = _npy_header(zf, members[key])
            if dtype.hasobject or (key == "x" and dtype.kind in "USV"):
                raise DataError(f"{path}: array '{key}' holds {dtype} values; save plain numbers "
                                "(and strings only for labels or class names).")
            nbytes = math.prod(shape) * dtype.itemsize
            if members[key].file_size != header + nbytes:
                raise DataError(f"{path}: array '{key}' is corrupt (its header says shape {shape}, "
                                f"{nbytes:,} bytes, the archive holds {members[key].file_size - header:,}); "
                                "save it again.")
            total += nbytes + math.prod(shape) * (4 if key == "x" else 8)  # + float32 / int64 copy
        check_size(total, path, "its arrays")
        out = {}
        for key in wanted:
            with zf.open(members[key]) as f:
                out[key] = np.lib.format.read_array(f, allow_pickle=False)
        return out


def read_npz(path: Path) -> Dataset:
    """The images (N, C, H, W) float32 in [0, 1], labels 0..K-1 or None and class names of a
    .npz with x (uint8 or floats in [0, 1]), optional y (integers or strings) and class_names."""
    try:
        arrays = _npz_arrays(path)
    except (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, NotImplementedError,
            RuntimeError) as err:
        raise DataError(f"{path} cannot be read as .npz ({err}); save it again with numpy.savez.") from None
    x = to_nchw(arrays["x"], path)
    y, names = _labels(arrays.get("y"), arrays.get("class_names"), len(x), path)
    scaling = scaled(255) if arrays["x"].dtype == np.uint8 else FLOATS_KEPT
    return Dataset(path.stem, x.contiguous(), y, names, str(path), scaling)
