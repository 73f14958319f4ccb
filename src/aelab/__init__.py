"""aelab: autoencoder experiments in one command.

The public API. Names load lazily so that ``import aelab`` (and ``aelab --help``) does not pay
for importing torch until a name that needs it is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "load_dataset": "datasets", "filter_classes": "datasets", "stratified_split": "datasets", "Dataset": "datasets",
    "create_model": "models", "list_models": "models", "register_model": "models",
    "Autoencoder": "models", "model_summary": "models.summary", "training_line": "models.summary",
    "fit": "train", "TrainConfig": "train", "EarlyStopping": "train", "History": "train",
    "evaluate_loss": "train", "Callback": "callbacks",
    "load_study": "config", "run_study": "runner", "resume_study": "runner", "load_run": "results",
    "register_step": "steps", "RunRecord": "records", "Run": "results", "open_run": "results",
    "compare_reconstructions": "report.plots", "loss_curves": "report.plots",
    "save_checkpoint": "runs.checkpoints", "load_checkpoint": "runs.checkpoints",
    "read_metrics": "runs.folder", "Listener": "listeners",
    "AelabError": "errors", "ConfigError": "errors", "DataError": "errors",
}

__all__ = ["__version__", *_API]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'aelab' has no attribute {name!r}")
