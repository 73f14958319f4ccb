"""datasets._files: the memory budget every reader checks claims against."""

import os

import pytest

from aelab.datasets import _files
from aelab.errors import DataError


def test_memory_limit_default_and_override(monkeypatch):
    monkeypatch.delenv("AELAB_MAX_DATA_BYTES", raising=False)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert _files.max_data_bytes() == ram // 4
    monkeypatch.setenv("AELAB_MAX_DATA_BYTES", "2e9")
    assert _files.max_data_bytes() == 2 * 10**9
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv("AELAB_MAX_DATA_BYTES", bad)
        with pytest.raises(DataError, match="AELAB_MAX_DATA_BYTES must be a positive number"):
            _files.max_data_bytes()
