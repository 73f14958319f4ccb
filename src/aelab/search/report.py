"""What a search reports, as pure functions of the stored search (an ``optuna.Study``).

The table of trials (state, value, epochs, time, the sampled settings), the best trial in
words, Optuna's matplotlib figures (optimisation history, parameter importances, parallel
coordinates) each with a caption, and the confirmation runs' mean ± 95% CI through the same
aggregates as any study repeated over seeds (``aelab.aggregate``).
"""

from __future__ import annotations

import math
import warnings

from ._driver import trial_name


def trial_rows(study) -> list[dict]:
    """One row per trial, in order: run, state (the run's status where it ran), value, epochs,
    seconds and the sampled settings (as Optuna stores them; list choices as JSON text)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        seconds = attrs.get("seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append({"trial": t.number, "run": trial_name(t.number),
                     "state": attrs.get("status", t.state.name.lower()), "value": t.value,
                     "epochs": attrs.get("epochs", len(t.intermediate_values)), "seconds": seconds,
                     "reason": attrs.get("reason", ""), "params": dict(t.params)})
    return rows


def best_lines(study, metric: str) -> list[str]:
    """The best trial and its settings in words, or why there is none."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.name.lower()}" for s in TrialState if states.count(s))
    if not done:
        return [f"Search: no trial completed ({counts or 'no trials'}), so there is no best configuration."]
    t = study.best_trial
    settings = ", ".join(f"{k} = {_fmt(v)}" for k, v in t.params.items())
    return [f"Search: {len(states)} trials ({counts}).",
            f"Best: {trial_name(t.number)}, {metric} {t.value:.4f}, with {settings}."]


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def figures(study, metric: str) -> list[tuple[str, object, str]]:
    """(name, matplotlib figure, caption) of each figure the stored trials allow: importances
    need two completed trials whose settings differ, parallel coordinates one completed trial."""
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as vis

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    out = []
    with warnings.catch_warnings():  # Optuna marks its matplotlib figures "experimental"
        warnings.simplefilter("ignore")
        if done:
            out.append(("search-history", vis.plot_optimization_history(study, target_name=metric),
                        f"{metric} of every completed trial in the order they ran, and the best so far."))
            out.append(("search-parallel", vis.plot_parallel_coordinate(study, target_name=metric),
                        f"Each completed trial as a line through its sampled settings and its {metric}."))
        if len(done) >= 2 and _varied(done):
            out.append(("search-importance", vis.plot_param_importances(study, target_name=metric),
                        f"How much of the variation of {metric} each setting explains (fANOVA over "
                        "the completed trials): with few trials, a rough guide only."))
    return [(name, ax.figure, caption) for name, ax, caption in out]


def _varied(trials) -> bool:
    """Some setting takes two values among these trials (else importances are undefined)."""
    names = set().union(*(t.params for t in trials))
    return any(len({repr(t.params.get(n)) for t in trials}) > 1 for n in names)


def confirmation(records) -> dict | None:
    """The confirmation runs (``confirm-seed<s>``, records.RunRecord or their JSON) summarised
    as one configuration over seeds: aelab.aggregate's entry, or None with fewer than two."""
    from ..aggregate import aggregates

    runs = [r for r in records if _name(r).startswith("confirm-seed")]
    groups = aggregates(runs)
    return groups[0] if groups else None


def _name(record) -> str:
    return record["name"] if isinstance(record, dict) else record.name


def confirmation_line(group: dict | None, metric: str) -> str:
    if group is None or metric not in group["metrics"]:
        return ""
    s = group["metrics"][metric]
    half = (s["ci_high"] - s["ci_low"]) / 2
    ci = f" ± {half:.4f} (95% CI)" if math.isfinite(half) else ""
    return f"Best configuration over {s['n']} seeds: {metric} {s['mean']:.4f}{ci}."
