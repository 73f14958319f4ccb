"""Observations in words: the comparisons a student is asked for, computed from the numbers.

Every sentence is derived from the run records (final losses, histories, times, the code
statistics that earlier steps measured) and the runs' own settings (early stopping); none is
canned, so a sentence changes when the numbers do. ``observe`` is what the ``observations``
study step prints.
"""

from __future__ import annotations

import math

# Model parameters that regularise the code: +1 where a larger value regularises more (penalty
# weights), -1 where a smaller one does (the KL target activation rho, the k of k-sparse).
REGULARISERS = {"activity_l1": 1, "beta": 1, "rho": -1, "k": -1}
LOSS_KEYS = (("val_loss", "validation loss"), ("test_loss", "test loss"), ("train_loss", "training loss"))


def _num(v: float) -> str:
    return f"{v:.4g}" if abs(v) >= 100 else f"{v:.4f}"


def _over(w: int) -> str:
    return "over the last epoch" if w == 1 else f"over the last {w} epochs"


def _setting_value(v) -> str:
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _seeds(group: list) -> str:
    return f" (mean of {len(group)} seeds)" if len(group) > 1 else ""


def _loss_key(records: list) -> tuple[str, str] | None:
    """The loss every record of a comparison has: validation, else test, else training."""
    for key, words in LOSS_KEYS:
        if all(isinstance(getattr(r, key), (int, float)) and math.isfinite(getattr(r, key)) for r in records):
            return key, words
    return None


def _others(r, drop: tuple[str, ...]) -> tuple:
    """The run's swept values other than ``drop`` (and the seed), as a hashable key."""
    return tuple(sorted((k, str(v)) for k, v in r.sweep.items() if k not in (*drop, "seed")))


def _batch_sizes(records: list) -> list[str]:
    """Per model entry (and other swept values): which batch size reaches the lower loss, and
    what an epoch costs at each."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r.label, _others(r, ("batch_size",))), {}).setdefault(r.batch_size, []).append(r)
    lines = []
    for (label, other), by_bs in groups.items():
        if len(by_bs) < 2:
            continue
        found = _loss_key([r for g in by_bs.values() for r in g])
        if found is None or not all(r.seconds_per_epoch for g in by_bs.values() for r in g):
            continue
        key, words = found
        rows = [(bs, _mean(getattr(r, key) for r in g), _mean(r.seconds_per_epoch for r in g),
                 _mean(r.seconds for r in g), _mean(r.epochs_run for r in g), g) for bs, g in by_bs.items()]
        where = label + "".join(f", {k}={v}" for k, v in other)
        best = min(rows, key=lambda t: t[1])
        fast = min(rows, key=lambda t: t[2])
        if len(rows) == 2:
            worse = next(t for t in rows if t is not best)
            slow = next(t for t in rows if t is not fast)
            if best[1] == worse[1]:
                loss = f"batch {best[0]} and {worse[0]} reach the same {words} ({_num(best[1])})"
            else:
                rel = (worse[1] - best[1]) / abs(worse[1]) if worse[1] else 0.0
                loss = (f"batch {best[0]} reaches the lower {words} ({_num(best[1])} vs {_num(worse[1])} at "
                        f"batch {worse[0]}, {rel:.1%} lower){_seeds(best[5])}")
            ratio = slow[2] / fast[2] if fast[2] else math.inf
            cost = (f"batch {fast[0]} is faster per epoch ({fast[2]:.2f} s vs {slow[2]:.2f} s, "
                    f"{ratio:.1f}× less time)" if ratio >= 1.05 else
                    f"an epoch takes about as long at either ({fast[2]:.2f} s vs {slow[2]:.2f} s)")
            whole = (f"the runs took {fast[3]:.1f} s ({fast[4]:g} epochs) at batch {fast[0]} and "
                     f"{slow[3]:.1f} s ({slow[4]:g} epochs) at batch {slow[0]}")
            lines.append(f"- {where}: {loss}; {cost}; {whole}.")
        else:
            each = ", ".join(f"batch {bs}: {_num(v)} ({spe:.2f} s/epoch)"
                             for bs, v, spe, *_ in sorted(rows, key=lambda t: t[0]))
            lines.append(f"- {where}: {words} by batch size: {each}; batch {best[0]} reaches the "
                         f"lowest {words}, batch {fast[0]} is fastest per epoch.")
    return lines


def _architecture(r, input_shape) -> tuple | None:
    """What a run's model is apart from its regularisers: the layers as built (on the meta
    device: no memory), so a model and its sparse variant match even under two registry names
    (simple / sparse-l1), while a k-sparse or KL model never matches a plain one."""
    import torch

    from ..errors import ConfigError
    from ..models import check_params
    from ..registry import MODELS

    try:
        full = check_params(r.model, r.params)
    except ConfigError:
        return None
    reg = {k: full[k] for k in REGULARISERS if k in full}
    if input_shape is None:
        return (r.model, tuple(sorted((k, repr(v)) for k, v in full.items() if k not in REGULARISERS))), reg
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        model = MODELS.get(r.model).fn(tuple(input_shape), **full)
    sig = (type(model).__name__, repr(model.encoder), repr(model.decoder),
           getattr(model, "output", None), getattr(model, "loss_name", None))
    return sig, reg


def _code_words(a: list, b: list) -> str:
    """How the code of runs ``a`` (regularised more) compares with ``b``'s, from the sparsity
    or code_activation step's numbers; says which step to add when neither measured it."""
    for key, words in (("mean_activation", "mean code activation"),
                       ("mean_code_activation", "mean code activation")):
        if all(key in r.metrics for r in a + b):
            va, vb = _mean(r.metrics[key] for r in a), _mean(r.metrics[key] for r in b)
            ratio = va / vb if vb else math.inf
            text = f"{words} {va:.4f} vs {vb:.4f} ({ratio:.2f}×)"
            if all("active_fraction" in r.metrics for r in a + b):
                fa = _mean(r.metrics["active_fraction"] for r in a)
                fb = _mean(r.metrics["active_fraction"] for r in b)
                text += f", active fraction {fa:.2f} vs {fb:.2f}"
            verdict = ("made the code sparser" if ratio < 0.9 else "made the code denser" if ratio > 1.1
                       else "left the code about as active (within 10%)")
            return f"{text}: the regulariser {verdict}"
    return "the code was not measured (add a `sparsity` or `code_activation` step before this one)"


def _trained_differently(a, b) -> str:
    """What differs in how two runs were trained, for comparisons that have no matched pair."""
    fields = (("batch_size", "batch"), ("optimizer", "optimizer"), ("learning_rate", "learning rate"),
              ("epochs_max", "epochs"))
    diffs = [f"{words} {_setting_value(getattr(a, f))} vs {_setting_value(getattr(b, f))}"
             for f, words in fields if getattr(a, f) != getattr(b, f)]
    return f"though trained differently ({', '.join(diffs) or 'other swept settings'})"


def _regularisers(records: list, input_shape) -> list[str]:
    """Model entries that differ only by a regulariser setting (activity_l1, beta, rho, k),
    compared at equal training settings: the loss, its penalty part and the code."""
    configs: dict = {}
    for r in records:
        arch = _architecture(r, input_shape)
        if arch is None:
            continue
        sig, reg = arch
        configs.setdefault((repr(sig), repr(sorted(reg.items()))), (sig, reg, []))[2].append(r)
    lines = []
    families: dict = {}
    for sig, reg, runs in configs.values():
        families.setdefault(repr(sig), []).append((reg, runs))
    for family in families.values():
        # From the least to the most regularised; each compared with the next (a sweep of five
        # weights gives four comparisons, not ten).
        family.sort(key=lambda item: [sign * (item[0].get(k) or 0) for k, sign in REGULARISERS.items()])
        for (reg_b, runs_b), (reg_a, runs_a) in zip(family, family[1:]):
            keys = [k for k in REGULARISERS if reg_a.get(k) != reg_b.get(k)]
            what = ", ".join(f"{k} {_setting_value(reg_a.get(k))} vs {_setting_value(reg_b.get(k))}"
                             for k in keys)

            def setting(r):
                return (r.batch_size, r.optimizer, r.learning_rate, r.epochs_max,
                        _others(r, (*REGULARISERS, "batch_size")))

            la, lb = sorted({r.label for r in runs_a}), sorted({r.label for r in runs_b})
            shared = sorted({setting(r) for r in runs_a} & {setting(r) for r in runs_b}, key=str)
            pairs = [([r for r in runs_a if setting(r) == s], [r for r in runs_b if setting(r) == s], s)
                     for s in shared] or [(runs_a, runs_b, None)]
            for ga, gb, s in pairs:
                found = _loss_key(ga + gb)
                if found is None:
                    continue
                key, words = found
                va, vb = _mean(getattr(r, key) for r in ga), _mean(getattr(r, key) for r in gb)
                rel = (va - vb) / abs(vb) if vb else 0.0
                at = (f"at batch {s[0]}" + "".join(f", {k}={v}" for k, v in s[4]) if s is not None
                      else _trained_differently(ga[0], gb[0]))
                pen = [r.history[-1].get(key.replace("_loss", "_penalty")) for r in ga if r.history]
                part = (f", of which the penalty is {_num(_mean(pen))}"
                        if pen and all(isinstance(p, (int, float)) for p in pen) else "")
                change = ("hardly changed the loss" if abs(rel) < 0.01 else
                          f"{'raised' if rel > 0 else 'lowered'} the loss by {abs(rel):.1%}")
                lines.append(f"- {'/'.join(la)} vs {'/'.join(lb)} ({what}) {at}: {words} {_num(va)} vs "
                             f"{_num(vb)}{part}: the regulariser {change}; {_code_words(ga, gb)}.")
    return lines


def _keras_best(values: list[float], min_delta: float) -> tuple[float, int]:
    """Keras EarlyStopping's best value and its epoch (1-based): best moves only on an
    improvement by more than min_delta."""
    best, epoch = math.inf, 0
    for i, v in enumerate(values, 1):
        if v < best - min_delta:
            best, epoch = v, i
    return best, epoch


def _falling(values: list[float], window: int) -> tuple[float, int, bool]:
    """How much the last value is below the one ``window`` epochs earlier, the window used, and
    whether the loss was still falling: the last epoch is a new low of the window."""
    w = min(window, len(values) - 1)
    if w < 1:
        return 0.0, 0, False
    fall = values[-1 - w] - values[-1]
    return fall, w, fall > 0 and values[-1] < min(values[-1 - w:-1])


def _trend(mon: str, values: list[float], fall: float, w: int, falling: bool) -> str:
    if not w:
        return f"one epoch is too few to see a trend in {mon}"
    if falling:
        return f"its {mon} still fell {_num(fall)} {_over(w)} ({_num(fall / w)} per epoch)"
    if fall < 0:
        return f"its {mon} rose {_num(-fall)} {_over(w)}"
    low = min(values[-1 - w:])
    at = len(values) - 1 - w + values[-1 - w:].index(low) + 1
    return f"its {mon} had stopped falling (lowest {_num(low)} at epoch {at}, last {_num(values[-1])})"


def _stopping(records: list, early_stopping: dict, window: int | None) -> list[str]:
    """When each run ended, why, and whether its monitored loss was still falling then."""
    lines = []
    for r in records:
        es = early_stopping.get(r.name)
        last = r.history[-1]
        mon = es.monitor if es is not None else ("val_loss" if "val_loss" in last else "train_loss")
        values = [e[mon] for e in r.history if isinstance(e.get(mon), (int, float))]
        if len(values) != len(r.history) or not all(math.isfinite(v) for v in values):
            continue
        fall, w, falling = _falling(values, window or (es.patience if es is not None and es.patience else 5))
        trend = _trend(mon, values, fall, w, falling)
        if r.stopped_early and es is not None:
            best, at = _keras_best(values, es.min_delta)
            if falling:
                why = (f"but no epoch beat the best ({_num(best)} at epoch {at}) by more than min_delta "
                       f"{es.min_delta:g}, which an epoch needs to count as an improvement, so it was "
                       "still improving slowly when it stopped")
            else:
                why = f"so it had stopped improving (best {_num(best)} at epoch {at})"
            lines.append(f"- {r.name} stopped early at epoch {r.epochs_run} of {r.epochs_max}; {trend}, {why}.")
        else:
            ending = (f"ran all {r.epochs_run} epochs" + (" without early stopping ending it" if es is not None
                                                          else " (no early stopping)"))
            more = ""
            if falling and fall / w > 1e-3 * abs(values[-1]):
                more = ": still improving, more epochs would likely lower it"
            elif falling:
                more = ": it had nearly levelled off (less than 0.1% per epoch)"
            lines.append(f"- {r.name} {ending}; {trend}{more}.")
    return lines


def _fit(records: list, gap: float, window: int | None) -> list[str]:
    """Over- or under-fitting from the final train and validation losses and the validation trend."""
    over, gaps, under, good = [], [], [], []
    for r in records:
        last = r.history[-1]
        tr, va = last.get("train_loss"), last.get("val_loss")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (tr, va)) or tr <= 0:
            continue
        vals = [e["val_loss"] for e in r.history]
        rel = (va - tr) / tr
        low = min(vals)
        low_at = vals.index(low) + 1
        rise = va - low
        fall, w, falling = _falling(vals, window or 5)
        text = f"{r.name} (val {_num(va)} vs train {_num(tr)}, {rel:+.1%}"
        if rel > gap and rise > 1e-3 * abs(low):
            over.append(text + f"; val rose {_num(rise)} since its lowest, epoch {low_at})")
        elif rel > gap:
            gaps.append(text + ")")
        elif falling and fall / w > 1e-3 * abs(va):
            under.append(text + f"; val still fell {_num(fall)} {_over(w)})")
        else:
            good.append(text + ")")
    kinds = ((over, f"- Over-fitting (validation loss more than {gap:.0%} above training and rising again): "),
             (gaps, f"- A generalisation gap (validation loss more than {gap:.0%} above training) but no "
                    "rise of the validation loss yet: "),
             (under, f"- Under-fitted, still learning when training ended (validation at most {gap:.0%} "
                     "above training and still falling): "),
             (good, f"- No sign of over- or under-fitting (validation at most {gap:.0%} above training, "
                    "levelled off): "))
    lines = [lead + "; ".join(runs) + "." for runs, lead in kinds if runs]
    if lines and any(r.history[-1].get("val_loss", math.inf) < r.history[-1].get("train_loss", -math.inf)
                     for r in records):
        lines.append("- A validation loss below the training loss is no paradox: the training loss is "
                     "averaged over an epoch whose weights were still improving, the validation loss "
                     "is measured at its end.")
    return lines


def observe(records: list, early_stopping: dict, image_shape, window: int | None = None,
            gap: float = 0.1) -> list[str]:
    """The observations on ``records`` (records.RunRecord, in study order); ``early_stopping``
    maps a run's name to its train.EarlyStopping (or None)."""
    trained = [r for r in records if r.trained and r.history]
    parts = [("Batch size", _batch_sizes(trained)), ("Regularisers", _regularisers(trained, image_shape)),
             ("Early stopping", _stopping(trained, early_stopping, window)),
             ("Fit", _fit(trained, gap, window))]
    lines = ["Observations:"]
    for title, found in parts:
        if found:
            lines.append(f"{title}:")
            lines += found
    for r in records:
        if not r.trained:
            lines.append(f"- {r.name} has no trained model ({r.status}: {r.reason or 'no reason given'}).")
    return lines if len(lines) > 1 else []
