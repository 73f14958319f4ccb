"""Training callbacks: hooks into ``fit`` in the spirit of Keras and Lightning callbacks.

A callback overrides any of ``on_fit_start``, ``on_epoch_start``, ``on_epoch_end`` (with the
epoch's record) and ``on_fit_end``; each gets the :class:`FitState`, and any callback can end
training with ``state.stop(status, reason)``. A callback with state that must survive an
interruption (early stopping's best value and patience) returns it from ``state_dict`` and
takes it back in ``load_state_dict``; tensors in it are saved with the resume state.

This module is a leaf (nothing of aelab above it), so models can define callbacks too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class Callback:
    # The name its state_dict is saved under in resume states; a subclass renamed later keeps
    # its old key so that folders written before the rename still resume.
    @property
    def state_key(self) -> str:
        return type(self).__name__

    def on_fit_start(self, state: FitState) -> None:
        pass

    def on_epoch_start(self, state: FitState) -> None:
        pass

    def on_epoch_end(self, state: FitState, record: dict) -> None:
        pass

    def on_fit_end(self, state: FitState) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)  # one record per epoch (losses, seconds)
    status: str = "completed"  # completed, stopped_early, diverged or failed
    reason: str = ""  # why a run stopped early, diverged or failed
    best_epoch: int | None = None  # by the early-stopping monitor, 1-based
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def column(self, key: str) -> list[float]:
        return [e.get(key, math.nan) for e in self.epochs]


@dataclass
class FitState:
    """What callbacks see and may change while ``fit`` runs."""

    model: object
    optimizer: object
    config: object  # train.TrainConfig
    history: History
    generators: dict  # "shuffle" and "noise" torch.Generators, saved with the resume state
    epoch: int = 0  # the epoch running (1-based) or last finished
    epochs: int = 0  # the most epochs this fit may run
    should_stop: bool = False
    callbacks: list = field(default_factory=list)  # every callback of this fit, in call order

    def stop(self, status: str, reason: str = "") -> None:
        """End training after this epoch with ``status`` (e.g. "stopped_early")."""
        self.should_stop = True
        if self.history.status == "completed":  # the first reason to stop is the one reported
            self.history.status, self.history.reason = status, reason


class Divergence(Callback):
    """A NaN or infinite training or validation loss ends the run with status "diverged"."""

    def on_epoch_end(self, state, record):
        bad = [k for k in ("train_loss", "val_loss") if k in record and not math.isfinite(record[k])]
        if bad:
            state.stop("diverged", f"{bad[0]} became {record[bad[0]]} at epoch {record['epoch']}")


class EarlyStoppingCallback(Callback):
    """Keras ``EarlyStopping``: an epoch improves only if ``value < best - min_delta``; ``best``
    moves only on an improvement; training stops once ``patience`` epochs in a row did not
    improve. With ``restore_best``, the weights of the best epoch are put back at the end."""

    state_key = "EarlyStopping"  # its name until 2026-11 (resume states keep it)

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = False):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.best, self.wait, self.best_epoch, self.best_weights = math.inf, 0, None, None

    def on_epoch_end(self, state, record):
        if self.monitor not in record:
            from .errors import ConfigError

            keys = ", ".join(k for k in record if k not in ("epoch", "seconds"))
            raise ConfigError(f"Early stopping monitors {self.monitor!r}, which this run does "
                              f"not produce; choose one of: {keys}.")
        value = record[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.wait, self.best_epoch = value, 0, record["epoch"]
            if self.restore_best:
                self.best_weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience and not state.should_stop:
                state.stop("stopped_early", f"{self.monitor} did not improve by more than "
                           f"{self.min_delta:g} for {self.patience} epochs (best {self.best:.4g} "
                           f"at epoch {self.best_epoch})")
        state.history.best_epoch = self.best_epoch

    def on_fit_end(self, state):
        if self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        out = {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch}
        if self.best_weights is not None:
            out["best_weights"] = self.best_weights
        return out

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait, self.best_epoch = state["best"], state["wait"], state["best_epoch"]
        self.best_weights = state.get("best_weights")


class LambdaCallback(Callback):
    """Wrap plain functions as hooks, e.g. ``LambdaCallback(on_epoch_end=lambda s, r: print(r))``."""

    def __init__(self, on_fit_start=None, on_epoch_start=None, on_epoch_end=None, on_fit_end=None):
        for name, fn in (("on_fit_start", on_fit_start), ("on_epoch_start", on_epoch_start),
                         ("on_epoch_end", on_epoch_end), ("on_fit_end", on_fit_end)):
            if fn is not None:
                setattr(self, name, fn)
