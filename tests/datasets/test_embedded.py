"""datasets.embedded: the datasets shipped inside aelab's dependencies."""

import torch

from aelab import datasets as D


def test_embedded_datasets(digits5k):
    assert digits5k.x.shape == (5000, 1, 28, 28) and len(digits5k.class_names) == 10
    assert digits5k.x.min() >= 0 and digits5k.x.max() <= 1 and digits5k.x.max() > 0.9
    assert torch.bincount(digits5k.y).tolist() == [500] * 10
    assert D.load_dataset("digits").x.shape == (1797, 1, 8, 8)
