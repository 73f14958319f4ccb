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
        names = {f.name for f in fields(cls)} - {"metrics"}
        known = {k: v for k, v in d.items() if k in names}
        known.setdefault("params", {})
        known.setdefault("sweep", {})
        for key in ("seed", "batch_size", "optimizer", "learning_rate"):
            known.setdefault(key, None)
        return cls(**known, metrics={k: v for k, v in d.items() if k not in names})


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
