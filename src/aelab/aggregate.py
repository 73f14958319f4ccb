"""Repeats with statistics: runs that differ only by their seed, summarised per configuration.

A study with ``seed = [0, 1, 2, 3, 4]`` trains every configuration five times; each final
number then gets its mean, standard deviation and a 95% confidence interval of the mean
(Student's t with n - 1 degrees of freedom), and two configurations can be compared by the
difference of their means with Welch's interval. One seed's number is an anecdote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Final numbers summarised when every run of a configuration has them (in this order), then any
# other number that steps added (probe_accuracy, auroc, ...).
KEYS = ("val_loss", "test_loss", "train_loss", "epochs_run", "seconds", "seconds_per_epoch")
NOT_METRICS = {"seed", "batch_size", "learning_rate", "epochs_max", "best_epoch", "peak_rss_mb",
               "probe_C", "k", "code_size", "diverged_epoch"}


def _value(entry: dict, key: str):
    v = entry.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict:
    """n, mean, std (n - 1) and the t confidence interval of the mean."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def configuration(entry: dict) -> str:
    """The run's configuration without its seed: its model entry and other swept values."""
    sweep = entry.get("sweep") or {}
    return ", ".join([str(entry.get("label", entry.get("name"))),
                      *(f"{k}={v}" for k, v in sweep.items() if k != "seed")])


def aggregates(records) -> list[dict]:
    """Per configuration repeated over seeds (two or more finished runs): the statistics of every
    final number, as metrics.json's ``aggregates`` list. Takes RunRecords or their JSON."""
    entries = [r if isinstance(r, dict) else r.to_json() for r in records]
    groups: dict[str, list[dict]] = {}
    for e in entries:
        if "seed" in (e.get("sweep") or {}) and e.get("status") in ("completed", "stopped_early"):
            groups.setdefault(configuration(e), []).append(e)
    out = []
    for config, group in groups.items():
        if len(group) < 2:
            continue
        keys = [k for k in KEYS if all(_value(e, k) is not None for e in group)]
        keys += [k for k in group[0] if k not in keys and k not in NOT_METRICS
                 and all(_value(e, k) is not None for e in group)]
        out.append({"configuration": config, "n": len(group), "runs": [e["name"] for e in group],
                    "metrics": {k: summarize([_value(e, k) for e in group]) for k in keys}})
    return out


def difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """mean(b) - mean(a) with Welch's t interval (unequal variances)."""
    from scipy import stats

    sa, sb = summarize(a), summarize(b)
    va, vb = sa["std"] ** 2 / sa["n"], sb["std"] ** 2 / sb["n"]
    diff = sb["mean"] - sa["mean"]
    se = math.sqrt(va + vb)
    if se == 0 or sa["n"] < 2 or sb["n"] < 2:
        return {"difference": diff, "ci_low": math.nan, "ci_high": math.nan}
    dof = (va + vb) ** 2 / (va**2 / (sa["n"] - 1) + vb**2 / (sb["n"] - 1))
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    return {"difference": diff, "ci_low": diff - half, "ci_high": diff + half}


def differences(entries: list[dict], groups: list[dict]) -> list[dict]:
    """For exactly two repeated configurations: per shared metric, the second's mean minus the
    first's with Welch's 95% interval (an interval that excludes 0 is a real difference)."""
    if len(groups) != 2:
        return []
    by_name = {e.get("name"): e for e in entries}
    a, b = groups
    out = []
    for key in a["metrics"]:
        if key not in b["metrics"]:
            continue
        va = [_value(by_name[n], key) for n in a["runs"]]
        vb = [_value(by_name[n], key) for n in b["runs"]]
        out.append({"metric": key, "first": a["configuration"], "second": b["configuration"],
                    **difference(va, vb)})
    return out
