"""The budgets a study is checked against before anything is allocated: runs in its plan and
memory per model. Their defaults can be raised by environment variables, within hard ceilings
(an environment is input too: ``inf`` or ``1e300`` is one sentence, not an OverflowError)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import ConfigError


@dataclass
class Limits:
    """Budgets checked at load time; the defaults can be raised by environment variables."""

    max_runs: int = 1000  # AELAB_MAX_RUNS
    max_memory: int = 0  # bytes a model may need in training; 0: 80% of this machine's memory

    @classmethod
    def from_env(cls) -> Limits:
        """The budgets, raised within hard ceilings: a plan of at most MAX_RUNS runs (each a few
        KB before it trains) and a model that fits this machine's memory; one sentence else."""
        import psutil

        total = psutil.virtual_memory().total
        runs = _budget("AELAB_MAX_RUNS", "a whole number of runs", cls.max_runs, MAX_RUNS, int)
        gb = _budget("AELAB_MAX_MEMORY_GB", "a number of GB", 0.8 * total / 2**30, total / 2**30, float)
        return cls(max_runs=runs, max_memory=int(gb * 2**30))


MAX_RUNS = 100_000  # AELAB_MAX_RUNS' ceiling: the plan is expanded in memory before training


def _budget(name: str, what: str, default, ceiling, kind):
    """An environment budget: parsed, finite, positive and at most ``ceiling``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={text[:40]!r} is not allowed; give {what} above 0.")
    if value > ceiling:
        raise ConfigError(f"{name}={text[:40]} is above its ceiling of {ceiling:,.0f} (this machine and "
                          "aelab's limits); give a smaller budget.")
    return value
