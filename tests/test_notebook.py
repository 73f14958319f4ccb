"""examples/fashion-shoes.ipynb runs from top to bottom and shows what the assignment asks for."""

import time
from pathlib import Path

import pytest

from .conftest import needs_fashion

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "fashion-shoes.ipynb"


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@needs_fashion
def test_fashion_shoes_notebook_executes(tmp_path):
    """About a minute (66 s with one thread on a shared 2-core machine): 4 runs on 4,200 images."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells), "commit the notebook without outputs"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell that failed
    seconds = time.perf_counter() - start
    text = _text(nb)
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
    assert images == 3  # the loss curves, and reconstructions by the stacked and the sparse model
    for expected in ("Sandal", "Ankle boot", "Total params: 428,354", "L1 activity penalty 1e-06",
                     "Observations:", "reaches the lower validation loss", "This notebook ran in"):
        assert expected in text, expected
    assert "\x1b[" not in text  # no rich console output leaking into the notebook
    assert len(list((tmp_path / "runs").glob("fashion-shoes-*/report.html"))) == 1
    print(f"notebook executed in {seconds:.0f} s")
