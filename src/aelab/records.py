"""The result of one run, as the runner, the steps and the reports share it.

A :class:`RunRecord` replaces the string-keyed dicts that used to travel between modules; its
JSON form is the run's entry in ``metrics.json`` with the field names of SPEC's contract (the
``metrics`` that steps add, e.g. ``probe_accuracy``, sit beside the fixed fields, as before).
metrics.json is strict JSON: a NaN or infinite number is written as ``null``; the run's
``status`` and ``reason`` say why.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from .errors import FolderError

FINISHED = ("completed", "stopped_early", "diverged", "failed", "pruned")  # a run with one of these is done
TRAINED = ("completed", "stopped_early")  # ... and has a model worth evaluating


@dataclass
class RunRecord:
    name: str  # e.g. "stacked-bs32"
    model: str  # registry name
    label: str  # the [[models]] entry it came from
    params: dict  # model parameters as the study gave them (swept values resolved)
    sweep: dict  # the swept settings of this run, e.g. {"batch_size": 32, "seed": 1}
    seed: int
    batch_size: int
    optimizer: str
    learning_rate: float | None
    status: str = "pending"  # pending, completed, stopped_early, diverged, failed or pruned (a search trial)
    reason: str = ""
    epochs_run: int = 0
    epochs_max: int = 0
    stopped_early: bool = False
    best_epoch: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    test_loss: float | None = None
    seconds: float = 0.0
    seconds_per_epoch: float | None = None
    peak_rss_mb: float | None = None
    loss_name: str = ""  # e.g. "binary cross-entropy", for axis labels
    stacked_with: list[str] = field(default_factory=list)  # runs trained with it as one stack
    history: list[dict] = field(default_factory=list)  # one record per epoch
    metrics: dict = field(default_factory=dict)  # what steps add (probe_accuracy, verdict, ...)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def trained(self) -> bool:
        return self.status in TRAINED

    @property
    def config(self) -> str:
        """The run's configuration without its seed: runs that differ only by seed share it."""
        parts = [self.label] + [f"{k}={v}" for k, v in self.sweep.items() if k != "seed"]
        return ", ".join(parts)

    def to_json(self) -> dict:
        d = asdict(self)
        metrics = d.pop("metrics")
        if not d["reason"]:
            del d["reason"]
        return {**d, **metrics}

    @classmethod
    def from_json(cls, d: dict) -> RunRecord:
        """A record from its metrics.json entry, its types checked first (check_json)."""
        check_json(d)
        names = {f.name for f in fields(cls)} - {"metrics"}
        known = {k: v for k, v in d.items() if k in names}
        known.setdefault("params", {})
        known.setdefault("sweep", {})
        for key in ("seed", "batch_size", "optimizer", "learning_rate"):
            known.setdefault(key, None)
        return cls(**known, metrics={k: v for k, v in d.items() if k not in names})


_NUM, _NONE = (int, float), type(None)
# The JSON type of each field an entry may hold (None where a baseline, e.g. raw-pixels, or an
# unfinished run has no value). A run folder is not trusted: a mistyped entry is refused here,
# once, rather than failing as a TypeError in whichever reader meets it first.
JSON_TYPES = {
    "name": str, "model": (str, _NONE), "label": (str, _NONE), "params": dict, "sweep": dict,
    "seed": (int, _NONE), "batch_size": (int, _NONE), "optimizer": (str, _NONE),
    "learning_rate": (*_NUM, _NONE), "status": str, "reason": str, "epochs_run": int, "epochs_max": int,
    "stopped_early": bool, "best_epoch": (int, _NONE), "train_loss": (*_NUM, _NONE),
    "val_loss": (*_NUM, _NONE), "test_loss": (*_NUM, _NONE), "seconds": _NUM,
    "seconds_per_epoch": (*_NUM, _NONE), "peak_rss_mb": (*_NUM, _NONE), "loss_name": str,
    "stacked_with": list, "history": list,
}
# metrics.json's other tables, read by the reports.
METRICS_TYPES = {"study": str, "description": str, "dataset": (dict, _NONE), "runs": list, "summary": list,
                 "figures": list, "captions": dict, "model_summaries": dict, "environment": dict,
                 "quick": bool, "complete": bool}
_SCALAR = (str, int, float, bool, _NONE)


def _typed(value, types) -> bool:
    """isinstance, but a bool is no int (JSON true where a number belongs is damage)."""
    types = types if isinstance(types, tuple) else (types,)
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _damaged(where, why: str) -> FolderError:
    return FolderError(f"{where} is damaged ({why}); it does not hold aelab results as written.")


def check_json(d, where: str = "metrics.json") -> None:
    """A run's entry as metrics.json holds it: every field of its type, the history a list of
    epoch records of scalars; one sentence naming the run and field if not."""
    if not isinstance(d, dict) or not isinstance(d.get("name"), str):
        raise _damaged(where, "a run entry that is not an object with a name")
    bad = next((k for k, t in JSON_TYPES.items() if k in d and not _typed(d[k], t)), None)
    if bad is not None:
        raise _damaged(where, f"run {d['name'][:80]!r} has a {bad} of type {type(d[bad]).__name__}")
    if d.get("status", "pending") not in ("pending", *FINISHED) or min(d.get("epochs_run", 0),
                                                                      d.get("epochs_max", 0)) < 0:
        raise _damaged(where, f"run {d['name'][:80]!r} has an unknown status or a negative epoch count")
    lists = (d.get("history", []), d.get("stacked_with", []))
    if not all(isinstance(e, dict) and all(isinstance(v, _SCALAR) for v in e.values()) for e in lists[0]) \
            or not all(isinstance(n, str) for n in lists[1]):
        raise _damaged(where, f"run {d['name'][:80]!r} has a history or stacked_with of the wrong shape")


def check_metrics(data, where) -> None:
    """metrics.json as the reports read it: its tables of the right types, every run entry
    checked (check_json), the dataset table readable; one sentence if not."""
    if not isinstance(data, dict):
        raise _damaged(where, "not a JSON object")
    bad = next((k for k, t in METRICS_TYPES.items() if k in data and not _typed(data[k], t)), None)
    if bad is not None:
        raise _damaged(where, f"{bad} is of type {type(data[bad]).__name__}")
    for entry in data.get("runs", []):
        check_json(entry, where)
    texts = [*data.get("summary", []), *data.get("figures", []), *data.get("captions", {}).values(),
             *data.get("model_summaries", {}).values()]
    if not all(isinstance(t, str) for t in texts) or not all(
            isinstance(v, _SCALAR) for v in data.get("environment", {}).values()):
        raise _damaged(where, "a summary, figure, caption or environment entry is not text")
    if data.get("dataset"):
        _check_dataset(data["dataset"], where)


def _check_dataset(table: dict, where) -> None:
    """The dataset table as the reports read it (datasets.DataInfo.to_json writes it)."""
    dist, splits = table.get("distribution") or {}, table.get("splits") or {}
    rows = list(dist.values()) if isinstance(dist, dict) else None
    ok = (isinstance(splits, dict) and all(_typed(n, int) for n in splits.values())
          and isinstance(table.get("image_shape", []), list) and isinstance(table.get("class_names", []), list)
          and all(_typed(n, int) for n in table.get("image_shape") or [])
          and rows is not None and len({len(r) if isinstance(r, list) else -1 for r in rows}) <= 1
          and all(isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) and _typed(r[1], int)
                  and _typed(r[2], _NUM) for subset in rows for r in subset))
    if not ok:
        raise _damaged(where, "its dataset table is not as aelab writes it")


def finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # NumPy / torch scalars
        return finite(obj.item())
    if hasattr(obj, "tolist"):
        return finite(obj.tolist())
    return obj


def dumps(obj) -> str:
    """Strict JSON (``allow_nan=False``) of ``obj`` with non-finite numbers as null."""
    return json.dumps(finite(obj), indent=2, allow_nan=False, default=str) + "\n"
