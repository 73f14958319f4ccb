"""Datasets: ``load_dataset(name or path)``, class selection, stratified splits and ``prepare``.

Images are (N, C, H, W) float32 in [0, 1]; labels are int64 0..K-1 with ``class_names``. Each
built-in dataset registers in ``aelab.registry.DATASETS`` with a typed :class:`DatasetInfo`;
importing this package imports the modules that register them (one per source).
"""

from __future__ import annotations

from ..registry import import_modules
from ._base import Dataset, DatasetInfo, how_to_get, register_dataset
from .idx import FASHION_MNIST_CLASSES, IDX_FILES, MIRRORS, cache_dir, read_idx
from .load import check_dataset_name, load_dataset, registered
from .prepare import DataInfo, known_image_shape, prepare
from .split import (
           class_distribution,
           class_indices,
           filter_classes,
           limit_per_class,
           stratified_split,
)
from .status import DatasetStatus, dataset_status

__all__ = ["Dataset", "DatasetInfo", "DataInfo", "DatasetStatus", "register_dataset", "load_dataset",
           "registered", "check_dataset_name", "how_to_get", "prepare", "known_image_shape", "filter_classes",
           "class_indices", "stratified_split", "limit_per_class", "class_distribution", "dataset_status",
           "cache_dir", "read_idx", "IDX_FILES", "MIRRORS", "FASHION_MNIST_CLASSES"]

import_modules(__name__, __path__)  # every module of this package registers its entries
