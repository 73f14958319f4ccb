"""A dataset by name (a registered one) or by path (a .npz file or a folder of images)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, DataError
from ..registry import DATASETS, Entry
from ._base import Dataset
from .folder import read_image_folder
from .npz import read_npz


def load_dataset(name: str, part: str = "all", data_dir: str | Path | None = None,
                 download: bool = True, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """A dataset by name (see ``aelab data``) or path (.npz or image folder).

    ``part`` is train, test or all (train then test) for the IDX sets, ignored otherwise;
    ``progress(done_bytes, total_bytes)`` is called per downloaded file."""
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise DataError(f"The dataset name is empty ({name!r}); use one of {', '.join(DATASETS.names())}, "
                        "a .npz file or a folder of images.")
    entry = registered(str(name))
    if entry is not None:
        return entry.fn(part=part, data_dir=data_dir, download=download, progress=progress)
    try:
        path = Path(name).expanduser()
        path.is_dir()  # a name too long for the file system raises here
    except (RuntimeError, OSError) as err:  # ~user that does not exist, or the name is too long
        why = "no such user's home folder" if isinstance(err, RuntimeError) else err.strerror or "bad path"
        raise DataError(f"Dataset {str(name)[:80]!r} cannot be read as a path ({why}); use one of "
                        f"{', '.join(DATASETS.names())}, a .npz file or a folder of images.") from None
    if path.is_dir():
        return read_image_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return read_npz(path)
        raise DataError(f"{path} is neither a .npz file nor a folder of images; use one of those.")
    if looks_like_path(str(name)):
        raise DataError(f"{path} does not exist; check the path of your dataset.")
    raise DataError(f"Unknown dataset {name!r}; use one of {', '.join(DATASETS.names())}, "
                    "a .npz file or a folder of images.")


def registered(name: str) -> Entry | None:
    """The registry entry of a dataset name as load_dataset reads it (any case, spaces around),
    or None for a path."""
    key = name.strip().lower()
    return DATASETS.get(key) if key in DATASETS else None


def looks_like_path(s: str) -> bool:
    if any(c in s for c in ("/", "\\", os.sep)) or s.lower().endswith(".npz") or s.startswith(("~", ".")):
        return True
    try:
        return Path(s).exists()
    except OSError:  # a name too long for the file system is no file of ours
        return False


def check_dataset_name(value, key: str) -> None:
    """A dataset as a study names it (``key`` is its key path, e.g. "data.dataset"): a known
    name or something that looks like a path; checked at load time, the file itself later."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} = {shown} is empty; name a dataset ({', '.join(DATASETS.names())}), "
                          "a .npz file or a folder of images.")
    if registered(value) is None and not looks_like_path(value.strip()):
        raise ConfigError(f"{key} = {shown} is not a known dataset; use one of "
                          f"{', '.join(DATASETS.names())}, a .npz file or a folder of images.")
