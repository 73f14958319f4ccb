"""The run folder: everything a study writes, appearing complete or not at all.

A study writes into a hidden temporary folder next to its destination and renames it into place
when it finishes (an atomic rename on one filesystem). An interrupted study keeps what it had
as ``<name>.incomplete`` so finished runs are never lost, but never looks complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .errors import AelabError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunFolder:
    """A run folder under construction; ``finish()`` moves it into place."""

    def __init__(self, final: Path):
        self.final = Path(final)
        if self.final.exists():
            raise AelabError(f"Output folder {self.final} exists already; pass another --out.")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=f".{self.final.name}."))
        (self.path / "figures").mkdir()
        (self.path / "checkpoints").mkdir()

    @classmethod
    def for_study(cls, study_name: str, out: str | Path | None, root: str | Path = "runs"):
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = Path(root) / f"{study_name}-{stamp}"
            n = 1
            while out.exists():  # two runs in the same second
                n += 1
                out = Path(root) / f"{study_name}-{stamp}-{n}"
        return cls(Path(out))

    def save_figure(self, name: str, fig) -> Path:
        """Save a matplotlib figure as figures/<name>.png and close it."""
        import matplotlib.pyplot as plt

        path = self.path / "figures" / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, text)

    def write_json(self, name: str, obj) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=_json_default) + "\n")

    def finish(self) -> Path:
        os.replace(self.path, self.final)
        return self.final

    def abort(self, keep: bool) -> Path | None:
        """Remove the temporary folder, or keep it as ``<final>.incomplete`` if it holds runs."""
        if keep:
            dest = self.final.with_name(self.final.name + ".incomplete")
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(self.path, dest)
            return dest
        shutil.rmtree(self.path, ignore_errors=True)
        return None


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def history_csv(runs: list[dict]) -> str:
    """One row per (run, epoch): run name then every key that appears in any epoch record."""
    keys: list[str] = []
    for r in runs:
        for e in r.get("history", []):
            keys += [k for k in e if k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", *keys])
    for r in runs:
        for e in r.get("history", []):
            w.writerow([r["name"], *(e.get(k, "") for k in keys)])
    return buf.getvalue()


def save_checkpoint(path: Path, model) -> None:
    """Tensors plus the model spec as safetensors metadata: loading runs no pickled code."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(Path(path), save(state, metadata={"aelab": json.dumps(model.spec)}))


def load_checkpoint(path: str | Path):
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from .models import create_model

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            spec = json.loads((f.metadata() or {})["aelab"])
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise AelabError(f"Checkpoint {path} cannot be read ({err}); is it an aelab checkpoint?") from None
    model = create_model(spec["model"], tuple(spec["input_shape"]), **spec["params"])
    model.load_state_dict(state)
    return model


def load_run(path: str | Path) -> dict:
    """The metrics.json of a finished run folder."""
    path = Path(path)
    metrics = path / "metrics.json"
    if not metrics.is_file():
        raise AelabError(f"{path} is not a finished aelab run folder (no metrics.json).")
    return json.loads(metrics.read_text())


