"""The [data] table (config.DataConfig): declared types and ranges, then one check of what spans
keys or needs the dataset registry; every refusal is one sentence naming data.<key>."""

import re

import pytest

from aelab.config import DataConfig, load_study
from aelab.errors import ConfigError
from aelab.params import validate


def check_data(**table):
    """What load_study does with a [data] table: validate the declaration, then check once."""
    validate(DataConfig, table, "data").check()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"dataset": ""}, r"data.dataset = '' is not allowed: string should have at least 1 character"),
        ({"dataset": "  "}, r"data.dataset = '  ' is empty"),
        ({"dataset": 5}, r"data.dataset = 5 is not allowed: it should be a valid string"),
        ({"dataset": "cifar-99"}, r"data.dataset = 'cifar-99' is not a known dataset; use one of digits, "),
        ({"fallback": "nope"}, r"data.fallback = 'nope' is not a known dataset"),
        ({"split": "official"}, r"data.split = 'official' needs a dataset with an official train/test "
                                r"split \(fashion-mnist, mnist\); 'mnist-5k' has none"),
        ({"split": "official", "dataset": "my.npz"}, r"'my.npz' has none"),
        ({"split": "official", "dataset": "mnist", "part": "train"}, r"data.part = 'train' does not go with"),
        ({"split": "official", "dataset": "mnist", "val": 1.0}, r"data.val = 1.0 is not allowed"),
        ({"val": 0}, r"data.val = 0 is not allowed"),
        ({"val": "train"}, r"data.val = 'train' is not allowed"),
        ({"val": True}, r"data.val = True is not allowed"),
        ({"split": [5, float("nan"), 1]}, r"data.split\[1\] = nan is not allowed: it should be a finite number"),
        ({"split": [5, float("inf")]}, r"data.split\[1\] = inf"),
        ({"split": [5]}, r"data.split = \[5\]"),
        ({"split": [1, 1, 1, 1]}, r"data.split"),
        ({"split": [5, 0, 1]}, r"data.split"),
        ({"split": [5, "1", 1]}, r"data.split"),
        ({"split": "5,1,1"}, r"data.split = '5,1,1'"),
        ({"part": "val"}, r"data.part = 'val' is not allowed: it should be 'train', 'test' or 'all'"),
        ({"limit": 9}, r"data.limit = 9 is not allowed: it should be greater than or equal to 10"),
        ({"limit": 100.5}, r"data.limit = 100.5"),
        ({"limit": True}, r"data.limit = True"),
        ({"classes": []}, r"data.classes = \[\] is not allowed: list should have at least 1 item"),
        ({"classes": "Sandal"}, r"data.classes = 'Sandal' is not allowed"),
        ({"classes": [1.5]}, r"data.classes\[0\] = 1.5 is not allowed: it should be a valid string or a valid integer"),
        ({"classes": [True]}, r"data.classes\[0\] = True"),
        ({"classes": [-1]}, r"data.classes\[0\] = -1 is not allowed: it should be a valid string or greater than or equal to 0"),
        ({"classes": ["Sandal"]}, r"data.classes: Unknown class 'Sandal' for mnist-5k; choose from: 0, 1"),
        ({"classes": [10]}, r"data.classes: Unknown class 10"),
        ({"classes": ["  "]}, r"data.classes\[0\] = '  ' is not allowed"),
        ({"val": 0.1, "dataset": "x.npz", "split": "official"}, r"'x.npz' has none"),
    ],
)
def test_check_data_config_refuses_with_one_sentence(kw, message):
    with pytest.raises(ConfigError, match=message) as err:
        check_data(**kw)
    assert not re.search(r"\.\s+[A-Z]", str(err.value)) and str(err.value).endswith(".")  # one sentence


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"dataset": "fashion-mnist", "classes": ["sandal", "Sneaker", 9], "split": [5, 1]},
        {"dataset": "mnist", "fallback": "mnist-5k", "split": "official", "val": "test"},
        {"dataset": "Fashion-MNIST", "split": "official", "val": 0.1, "limit": 10},
        {"dataset": "data/mine.npz", "fallback": "", "classes": ["cat"]},
        {"dataset": "~/images", "val": "test"},  # val only matters with the official split
    ],
)
def test_check_data_config_accepts(kw):
    check_data(**kw)



def test_a_bad_data_table_stops_the_study_before_any_data_is_read(monkeypatch):
    import aelab.datasets.load as load

    monkeypatch.setattr(load, "load_dataset", lambda *a, **k: pytest.fail("loaded data"))
    with pytest.raises(ConfigError, match=r"data\.split"):
        load_study("quickstart", overrides=["data.split=[1, nan, 1]"])
    with pytest.raises(ConfigError, match=r"data\.classes: Unknown class 'Sandal' for mnist-5k"):
        load_study("quickstart", overrides=["data.classes=['Sandal']"])
