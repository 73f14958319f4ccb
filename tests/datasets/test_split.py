"""datasets.split: class selection and stratified splits, tested by invariants."""

import pytest
import torch

from aelab import datasets as D
from aelab.errors import DataError


def check_split(ds, splits, sizes):
    assert [len(v) for v in splits.values()] == sizes
    assert sum(len(v) for v in splits.values()) == len(ds)
    for k, v in splits.items():
        counts = torch.bincount(v.y, minlength=len(ds.class_names)).float()
        expected = torch.bincount(ds.y, minlength=len(ds.class_names)).float() * len(v) / len(ds)
        assert (counts - expected).abs().max() <= 1.0, k


def test_stratified_split_invariants(digits5k):
    ds = D.limit_per_class(digits5k, 1400, seed=0)
    assert len(ds) == 1400 and torch.bincount(ds.y).tolist() == [140] * 10
    tagged = D.Dataset(ds.name, ds.x, ds.y, ds.class_names)
    tagged.x = tagged.x.clone()
    tagged.x[:, 0, 0, 0] = torch.arange(len(ds), dtype=torch.float32)  # a unique id per image
    splits = D.stratified_split(tagged, [5, 1, 1], seed=3)
    check_split(tagged, splits, [1000, 200, 200])
    ids = {k: set(v.x[:, 0, 0, 0].long().tolist()) for k, v in splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert set().union(*ids.values()) == set(range(1400))
    again = D.stratified_split(tagged, [5 / 7, 1 / 7, 1 / 7], seed=3)
    assert torch.equal(again["test"].x, splits["test"].x)
    other = D.stratified_split(tagged, [5, 1, 1], seed=4)
    assert not torch.equal(other["test"].x, splits["test"].x)


def test_unlabelled_split_is_random_and_exact(digits5k):
    ds = D.Dataset("u", digits5k.x[:70], None, [])
    a, b = D.stratified_split(ds, [5, 2], seed=1), D.stratified_split(ds, [5, 2], seed=1)
    assert list(a) == ["train", "test"] and [len(v) for v in a.values()] == [50, 20]
    assert torch.equal(a["test"].x, b["test"].x) and a["test"].y is None


def test_split_of_too_little_data_says_so(digits5k):
    with pytest.raises(DataError, match="Cannot split"):
        D.stratified_split(D.limit_per_class(digits5k, 12, seed=0), [5, 1, 1], seed=0)


def test_filter_by_names_or_indices(digits5k):
    by_name = D.filter_classes(digits5k, ["3", "7"])
    by_index = D.filter_classes(digits5k, [7, 3])
    assert torch.equal(by_name.x, by_index.x) and by_name.class_names == ["3", "7"]
    assert set(by_name.y.tolist()) == {0, 1} and len(by_name) == 1000
    with pytest.raises(DataError, match="choose from: 0, 1, 2"):
        D.filter_classes(digits5k, ["eleven"])
    fake = D.Dataset("f", digits5k.x[:10], torch.arange(10), list(D.FASHION_MNIST_CLASSES))
    shoes = D.filter_classes(fake, ["ankle BOOT", "sandal", "7"])  # any case; digit strings are indices
    assert shoes.class_names == ["Sandal", "Sneaker", "Ankle boot"] and shoes.y.tolist() == [0, 1, 2]


def test_class_distribution(digits5k):
    rows = D.class_distribution(D.filter_classes(digits5k, [0, 1]))
    assert rows == [("0", 500, 50.0), ("1", 500, 50.0)]


@pytest.mark.parametrize("case", range(40))
def test_splits_are_sklearns_train_test_split_exactly(case):
    """The split is written out to spare every run the import of sklearn.model_selection (issue
    21); it must stay index for index what train_test_split gave, or old run folders would
    resume onto other images."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from aelab.datasets.split import split_indices

    rng = np.random.default_rng(case)
    n = int(rng.integers(30, 3000))
    k = int(rng.integers(2, 11))
    y = rng.integers(0, k, n) if case % 4 else np.repeat(np.arange(k), -(-n // k))[:n]  # ties too
    if case % 10 == 9:
        y = None
    sizes = [0, int(rng.integers(k, n // 4)), int(rng.integers(k, n // 4))]
    sizes[0] = n - sizes[1] - sizes[2]
    seed = int(rng.integers(0, 2**31 - 1))
    ours = split_indices(n, y, sizes, seed, "x")
    rest, theirs = np.arange(n), []
    for size in sizes[1:][::-1]:
        rest, taken = train_test_split(rest, test_size=size, random_state=seed,
                                       stratify=None if y is None else y[rest])
        theirs.append(taken)
    for a, b in zip(ours, [rest, *theirs[::-1]], strict=True):
        assert np.array_equal(a, b)
