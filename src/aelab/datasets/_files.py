"""What every file reader shares: the memory budget, SHA-256 digests and pixels to (N, C, H, W).

A file states its sizes before its contents (an IDX header, a zip directory and .npy header, a
PNG header); every reader checks them against the file's length and the memory budget before it
allocates or decompresses anything, so a truncated file, a 2 MB archive claiming 9 GB or a
100000×100000 PNG is one DataError naming the file, never a traceback, a hang or a silent wrong
result (issue 11). NaN or infinite pixels, object arrays and mismatched labels are refused too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

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


def sha256_file(path: Path, gunzip: bool = False, limit: int | None = None) -> str:
    """SHA-256 of a file's bytes, or with ``gunzip`` of its decompressed content, in chunks;
    "" once more than ``limit`` bytes came out (a gzip bomb is not the file looked for)."""
    digest, total = hashlib.sha256(), 0
    with gzip.open(path, "rb") if gunzip else open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            total += len(chunk)
            if limit is not None and total > limit:
                return ""
            digest.update(chunk)
    return digest.hexdigest()


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

