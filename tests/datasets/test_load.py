"""datasets.load: a dataset by name or path."""

import numpy as np
import pytest

from aelab import datasets as D
from aelab.errors import DataError


def test_unknown_dataset_lists_names():
    with pytest.raises(DataError, match="mnist-5k"):
        D.load_dataset("cifar-99")


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_dataset_name_is_an_error_not_the_current_folder(name, tmp_path, monkeypatch):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)  # a folder of images that "" used to read silently
    with pytest.raises(DataError, match="dataset name is empty"):
        D.load_dataset(name)


def test_names_are_case_and_space_insensitive(digits5k):
    assert len(D.load_dataset(" MNIST-5k ")) == len(digits5k)
