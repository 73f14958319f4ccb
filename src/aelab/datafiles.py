"""Data files read with their claims checked first: IDX, .npz and folders of images.

A file states its sizes before its contents (an IDX header, a zip directory and .npy header, a
PNG header); every reader checks them against the file's length and the memory budget before it
allocates or decompresses anything, so a truncated file, a 2 MB archive claiming 9 GB or a
100000×100000 PNG is one DataError naming the file, never a traceback, a hang or a silent wrong
result (issue 11). NaN or infinite pixels, object arrays and mismatched labels are refused too.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
REFETCH = "delete it and run again to fetch it anew"


def max_data_bytes() -> int:
    """The memory one dataset may take: a quarter of the RAM (the splits, the model and its
    activations need the rest), or ``$AELAB_MAX_DATA_BYTES``."""
    env = os.environ.get("AELAB_MAX_DATA_BYTES", "").strip()
    if env:
        try:
            value = int(float(env))
        except (ValueError, OverflowError):
            value = 0
        if value <= 0:
            raise DataError(f"AELAB_MAX_DATA_BYTES must be a positive number of bytes, got {env!r}.")
        return value
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 4 << 30


def _size(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def check_size(nbytes: int, path, what: str) -> None:
    """Refuse ``nbytes`` above the budget before anything that size is allocated."""
    limit = max_data_bytes()
    if nbytes > limit:
        raise DataError(f"{path}: {what} would take {_size(nbytes)} in memory, more than the "
                        f"{_size(limit)} allowed (a quarter of the RAM unless "
                        "AELAB_MAX_DATA_BYTES says otherwise); use a smaller file or raise that limit.")


def sha256_file(path: Path, gunzip: bool = False) -> str:
    """SHA-256 of a file's bytes, or with ``gunzip`` of its decompressed content, in chunks."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") if gunzip else open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- IDX


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip), checking the header against the length and the memory
    budget before the body is read: never a silent wrong result from a truncated or
    mislabelled file, and never an allocation sized by a header that lies."""
    path = Path(path)
    try:
        size, isize = path.stat().st_size, -1
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"  # gzip magic; IDX files start with two zero bytes
            if gz and size >= 4:
                f.seek(-4, os.SEEK_END)
                isize = int.from_bytes(f.read(4), "little")  # gzip trailer: length mod 2**32
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00":
                raise DataError(f"Data file {path} is not an IDX file (bad magic number); {REFETCH}.")
            dtype, ndim = _IDX_DTYPES.get(head[2]), head[3]
            if dtype is None:
                raise DataError(f"Data file {path} has an unknown IDX type code 0x{head[2]:02x}; {REFETCH}.")
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"Data file {path} is truncated inside its header; {REFETCH}.")
            dims = [int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            count, itemsize = math.prod(dims), np.dtype(dtype).itemsize
            expected = 4 + 4 * ndim + count * itemsize
            if gz and isize != expected % (1 << 32):
                raise DataError(f"Data file {path} is truncated or corrupt (its gzip trailer gives "
                                f"{isize:,} bytes, shape {tuple(dims)} needs {expected:,}); {REFETCH}.")
            if not gz and size != expected:
                what = "truncated" if size < expected else "longer than its header says"
                raise DataError(f"Data file {path} is {what} ({size:,} bytes, expected {expected:,} "
                                f"for shape {tuple(dims)}); {REFETCH}.")
            check_size(count * (itemsize + 4), path, f"shape {tuple(dims)}")  # + float32 copy
            body = f.read(count * itemsize + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"Data file {path} cannot be read ({err}); {REFETCH}.") from None
    if len(body) != count * itemsize:
        what = "truncated" if len(body) < count * itemsize else "longer than its header says"
        raise DataError(f"Data file {path} is {what} ({4 + 4 * ndim + len(body):,} bytes, expected "
                        f"{expected:,} for shape {tuple(dims)}); {REFETCH}.")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype[1:])


# ---------------------------------------------------------------- .npz and images


def to_nchw(arr: np.ndarray, path: Path) -> torch.Tensor:
    """(N,H,W), (N,H,W,C) or (N,C,H,W) to float (N,C,H,W); channels are 1, 3 or 4."""
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3, 4) or 0 in arr.shape[2:]:
        raise DataError(f"{path}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with "
                        f"1, 3 or 4 channels, got shape {arr.shape}.")
    if len(arr) == 0:
        raise DataError(f"{path} holds no images; save at least one image per class.")
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{path}: images must be uint8 (0..255) or floats in [0, 1], got {arr.dtype}.")
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: {np.count_nonzero(~np.isfinite(arr)):,} pixel values are NaN or "
                        "infinite; replace or drop those images.")
    if arr.min() < 0 or arr.max() > 1:
        raise DataError(f"{path}: images must be uint8 (0..255) or floats in [0, 1], got {arr.dtype} "
                        f"in [{arr.min()}, {arr.max()}].")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


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


def read_npz(path: Path) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """(images (N, C, H, W) float32 in [0, 1], labels 0..K-1 or None, class names) of a .npz
    with x (uint8 or floats in [0, 1]), optional y (integers or strings) and class_names."""
    try:
        arrays = _npz_arrays(path)
    except (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, NotImplementedError,
            RuntimeError) as err:
        raise DataError(f"{path} cannot be read as .npz ({err}); save it again with numpy.savez.") from None
    x = to_nchw(arrays["x"], path)
    y, names = _labels(arrays.get("y"), arrays.get("class_names"), len(x), path)
    return x.contiguous(), y, names


def _imread(f: Path, n: int, first: tuple[Path, tuple] | None) -> np.ndarray:
    """One image as float32 (H, W) or (H, W, 3) in [0, 1]; alpha is dropped. Pillow is always
    there (matplotlib requires it). The size in the header is checked before decoding, against
    the first image's and the memory budget for ``n`` images, so a 100000×100000 claim costs
    nothing; Pillow's own decompression-bomb guard is an error too, not a warning."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                w, h = im.size
                if first is not None and (h, w) != first[1][:2]:
                    raise DataError(f"Image {f} is {w}×{h} pixels but {first[0]} is "
                                    f"{first[1][1]}×{first[1][0]}; give all images the same size.")
                bands = min(len(im.getbands()), 3)  # alpha is dropped
                check_size(2 * n * w * h * bands * 4, f, f"{n:,} images of {w}×{h} pixels")
                if im.mode not in ("L", "RGB", "I;16"):
                    colour = im.mode in ("RGBA", "RGBX", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA")
                    im = im.convert("RGB" if colour else "L")
                img = np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise DataError(f"Image {f} cannot be read ({err}); remove or replace it.") from None
    return img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)


def read_image_folder(path: Path) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """(images, labels, class names) of a folder of PNG/JPEG images, one subfolder per class
    (labels in sorted subfolder order), or images directly in it (unlabelled)."""
    try:
        classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        groups = [(c.name, sorted(c.iterdir())) for c in classes] or [("", sorted(path.iterdir()))]
    except OSError as err:  # an unreadable subfolder, a folder removed meanwhile
        raise DataError(f"Folder {err.filename or path} cannot be read ({err.strerror or err}); "
                        "make it readable or point data.dataset elsewhere.") from None
    files = [(label, f) for label, (_, fs) in enumerate(groups) for f in fs
             if f.suffix.lower() in (".png", ".jpg", ".jpeg") and not f.name.startswith(".")]
    if not files:
        raise DataError(f"Folder {path} holds no PNG or JPEG images; put them in one subfolder per class.")
    images, first = [], None
    for _, f in files:
        img = _imread(f, len(files), first)
        if first is None:
            first = (f, img.shape)
        elif img.shape != first[1]:
            raise DataError(f"Image {f} has shape {img.shape} but {first[0]} has {first[1]}; "
                            "give all images the same size and colour mode.")
        images.append(img)
    x = to_nchw(np.stack(images), path)
    y = torch.tensor([label for label, _ in files], dtype=torch.long) if classes else None
    return x.contiguous(), y, [g[0] for g in groups] if classes else []
