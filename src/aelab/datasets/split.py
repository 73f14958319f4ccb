"""Selecting classes and splitting: deterministic for a seed, stratified so parts keep the
class proportions (scikit-learn's ``train_test_split`` with exact integer sizes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import DataError
from ._base import Dataset


def filter_classes(ds: Dataset, classes: Sequence[str | int]) -> Dataset:
    """Keep the given classes (names, case-insensitive, or indices), relabelled 0..K-1 in the
    order of their original index, so the same selection always gives the same labels."""
    if ds.y is None:
        raise DataError(f"Dataset {ds.name} has no labels, so classes cannot be selected; remove data.classes.")
    if isinstance(classes, (str, int)):
        classes = [classes]
    kept = sorted(class_indices(classes, ds.class_names, ds.name, DataError))
    remap = torch.full((len(ds.class_names),), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    out = ds.subset(torch.nonzero(remap[ds.y] >= 0).squeeze(1))
    out.y = remap[out.y]
    out.class_names = [ds.class_names[i] for i in kept]
    return out


def class_indices(classes, names: Sequence[str], dataset: str, error=DataError) -> set[int]:
    """The indices of ``classes`` (names in any case, digit strings or ints) among ``names``;
    ``error`` is the exception to raise (DataError on data, ConfigError when a study loads)."""
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


def split_indices(n: int, y, sizes: list[int], seed: int, name: str) -> list[np.ndarray]:
    """Indices per part with exact integer sizes, stratified by ``y`` when given; the rest is
    part 0. The same indices as scikit-learn's ``train_test_split`` (see :func:`_take`)."""
    rest, out = np.arange(n), []
    try:
        for size in sizes[1:][::-1]:  # peel off test, then val; the rest is train
            rest, taken = _take(rest, size, seed, None if y is None else y[rest])
            out.append(taken)
    except ValueError as err:
        raise DataError(f"Cannot split {name} ({n:,} images) into parts of {sizes} keeping class "
                        f"proportions ({err}); use more images or fewer, larger parts.") from None
    return [rest, *out[::-1]]  # shuffled order: the first test images mix the classes


def _take(items: np.ndarray, n_test: int, seed: int, y=None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, taken): ``n_test`` of ``items`` taken at random, keeping the class proportions of
    ``y`` when given. Exactly scikit-learn 1.x's ``train_test_split(items, test_size=n_test,
    random_state=seed, stratify=y)`` (ShuffleSplit / StratifiedShuffleSplit, BSD-3-Clause), so
    splits made before stay the same; written out because importing sklearn.model_selection
    costs 1-2 s of every run's start, against milliseconds of arithmetic here."""
    n = len(items)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={n_test} should be between 1 and {n - 1}")
    rng = np.random.RandomState(seed)
    if y is None:
        perm = rng.permutation(n)
        return items[perm[n_test:]], items[perm[:n_test]]
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError("the least populated class has only 1 member, too few to split")
    if min(n - n_test, n_test) < len(classes):
        raise ValueError(f"each part needs at least one image of each of the {len(classes)} classes")
    by_class = np.split(np.argsort(y_idx.reshape(-1), kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n - n_test, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    kept, taken = [], []
    for i in range(len(classes)):
        members = by_class[i].take(rng.permutation(counts[i]), mode="clip")
        kept.extend(members[: n_i[i]])
        taken.extend(members[n_i[i]: n_i[i] + t_i[i]])
    return items[rng.permutation(kept)], items[rng.permutation(taken)]


def _approximate_mode(counts: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """Draws per class in proportion to ``counts``, floored, the remainder going to the largest
    fractional parts with ties broken by ``rng`` (sklearn.utils.extmath._approximate_mode)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def split_sizes(n: int, fractions: Sequence[float], name: str) -> list[int]:
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
    sizes = split_sizes(len(ds), fractions, ds.name)
    y = None if ds.y is None else ds.y.numpy()
    idx = split_indices(len(ds), y, sizes, seed, ds.name)
    names = ["train", "val", "test"] if len(fractions) == 3 else ["train", "test"]
    return {name: ds.subset(torch.from_numpy(i)) for name, i in zip(names, idx, strict=True)}


def limit_per_class(ds: Dataset, n: int, seed: int) -> Dataset:
    """A stratified random subsample of ``n`` images in total (for --quick runs)."""
    if n >= len(ds):
        return ds
    if n < 1:
        raise DataError(f"Cannot keep {n} images of {ds.name}; give a positive number.")
    y = None if ds.y is None else ds.y.numpy()
    _, taken = split_indices(len(ds), y, [len(ds) - n, n], seed, ds.name)
    return ds.subset(torch.from_numpy(np.sort(taken)))


def class_distribution(ds: Dataset) -> list[tuple[str, int, float]]:
    """(class name, count, percent) per class; empty for unlabelled data."""
    if ds.y is None:
        return []
    counts = torch.bincount(ds.y, minlength=len(ds.class_names)).tolist()
    return [(name, c, 100.0 * c / max(len(ds), 1)) for name, c in zip(ds.class_names, counts, strict=True)]
