"""Learning curves: small multiples of training and validation loss per epoch."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ._common import fold, literal, plain

# sweep keys -> how a legend names them ("batch 32", "lr 0.01")
SWEEP_NAMES = {"batch_size": "batch", "learning_rate": "lr", "optimizer": "", "input_noise": "noise"}
LOSS_NAMES = {"bce": "binary cross-entropy", "mse": "mean squared error", "sse": "sum of squared errors"}


def _number(x) -> str:
    if isinstance(x, float):
        return f"{x:.0e}" if x and abs(x) < 1e-3 else f"{x:g}"
    return str(x)


def _variant(entry: dict) -> str:
    """The swept values that tell a run apart within its model: "batch 32", "lr 0.01, k 25"."""
    sweep = {k: v for k, v in (entry.get("sweep") or {}).items() if k != "seed"}
    parts = []
    for k, v in sweep.items():
        name = SWEEP_NAMES.get(k, k)
        parts.append(f"{name} {_number(v)}".strip())
    return ", ".join(parts)


def _repeats_as_means(panel: list[dict]) -> list[dict]:
    """Runs that differ only by seed become one entry: the mean curve over the seeds (over the
    runs that reached each epoch) with a ±1 std band; other runs pass through."""
    groups: dict[str, list[dict]] = {}
    for e in panel:
        key = _variant(e) if "seed" in (e.get("sweep") or {}) else f"\0{e.get('name')}"
        groups.setdefault(key, []).append(e)
    out = []
    for key, group in groups.items():
        if len(group) < 2:
            out.extend(group)
            continue
        n_epochs = max(len(e["history"]) for e in group)
        history, band = [], {"train_loss": ([], []), "val_loss": ([], [])}
        for i in range(n_epochs):
            row = {"epoch": i + 1}
            for k in band:
                values = [e["history"][i].get(k) for e in group if i < len(e["history"])]
                values = [v for v in values if v is not None and math.isfinite(v)]
                if not values:
                    continue
                mean = sum(values) / len(values)
                std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
                row[k] = mean
                band[k][0].append(mean - std)
                band[k][1].append(mean + std)
            history.append(row)
        band = {k: v for k, v in band.items() if len(v[0]) == n_epochs}
        first = group[0]
        out.append({**first, "name": f"{key or first.get('label', '')} (mean of {len(group)} seeds)",
                    "history": history, "band": band, "best_epoch": None, "stopped_early": False,
                    "status": "completed", "epochs_max": max(int(e.get("epochs_max") or 0) for e in group)})
    return out


def loss_name(entry: dict) -> str:
    """The run's loss for an axis label: metrics' ``loss_name``, else the model's ``loss``
    parameter or the registered default, else "loss"."""
    if entry.get("loss_name"):
        return str(entry["loss_name"])
    name = (entry.get("params") or {}).get("loss")
    if name is None and entry.get("model"):
        try:
            from ...models import model_params  # lazy: the model zoo, only for old run folders

            name = model_params(entry["model"]).get("loss")
        except Exception:  # an unknown model in an old run folder: fall back to "loss"
            name = None
    return LOSS_NAMES.get(name, name) if isinstance(name, str) else "loss"


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _series(hist: list[dict], key: str) -> list[float]:
    return [h.get(key, math.nan) if h.get(key) is not None else math.nan for h in hist]


def _share_y(panels: dict[str, list[dict]], names: dict[str, str]) -> bool:
    """One y-axis for all panels when they plot the same loss on a similar scale (medians
    within 10x); else a VAE's summed loss (~150) would flatten a per-pixel BCE (~0.1)."""
    if len(set(names.values())) > 1:
        return False
    medians = []
    for runs in panels.values():
        vals = _finite(v for e in runs for k in ("train_loss", "val_loss")
                       for v in _series(e["history"], k))
        if vals:
            medians.append(abs(float(np.median(vals))) or 1e-12)
    return not medians or max(medians) / min(medians) <= 10



def reconstruction_title(entry: dict) -> str:
    """ "stacked-bs256: test reconstructions, test loss 0.2420 (binary cross-entropy)" from a
    run record; the loss is left out when the run has none."""
    title = f"{entry.get('name', '?')}: test reconstructions"
    test = entry.get("test_loss")
    if isinstance(test, (int, float)) and math.isfinite(test):
        title += f", test loss {test:.4f} ({loss_name(entry)})"
    return title


def loss_curves(entries: list[dict], title: str = "Learning curves", log: bool = False,
                panel_key: str = "label"):
    """Small multiples: one panel per model entry (``panel_key``), one colour per swept value
    (the same colour in every panel), training dashed and validation solid, integer epochs.

    The best epoch is a dot on the validation curve; a run stopped early gets an ``x`` and a
    dotted line "stopped at epoch N"; a diverged run is drawn up to its last finite epoch and
    marked there. Runs without a history (not trained, failed) are skipped. ``entries`` are the
    run records of metrics.json.
    """
    panels: dict[str, list[dict]] = {}
    for e in entries:
        if e.get("history"):
            key = e.get(panel_key) or e.get("label") or e.get("model") or e.get("name", "?")
            panels.setdefault(str(key), []).append(e)
    panels = {k: _repeats_as_means(v) for k, v in panels.items()}
    if not panels:
        return _nothing_to_plot(title)

    # One colour per swept value, in order of first appearance, the same in every panel; runs
    # without a sweep that share a panel are told apart by name.
    def variant(e: dict, panel: list[dict]) -> str:
        return _variant(e) or (e.get("name", "") if len(panel) > 1 else "")

    variants = list(dict.fromkeys(variant(e, prs) for prs in panels.values() for e in prs))
    colour = {v: f"C{i % 10}" for i, v in enumerate(variants)}

    names = {p: loss_name(rs[0]) for p, rs in panels.items()}
    share = _share_y(panels, names)
    n = len(panels)
    ncols = 2 if n == 4 else min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols + 0.4, 3.3 * nrows + 1.2),
                             sharey=share, squeeze=False, layout="constrained")
    markers = {"best": False, "stopped": False, "diverged": False, "band": False}
    everything = [e for prs in panels.values() for e in prs]
    for ax, (panel, prs) in zip(axes.flat, panels.items()):
        last_epoch, penalty = 1, False
        for e in prs:
            last, has_penalty = _draw_run(ax, e, colour[variant(e, prs)], markers)
            last_epoch, penalty = max(last_epoch, last), penalty or has_penalty
        head = plain(fold(panel, 40)) + ("\n(loss includes the regulariser)" if penalty else "")
        literal(ax.set_title(head, fontsize=10))
        ax.set_xlim(0.5, last_epoch + 0.5)  # the longest run, not the epoch budget it never reached
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")  # _zoom_past_first_epoch may add to it
        if log:
            ax.set_yscale("log")
        else:
            _zoom_past_first_epoch(ax, everything if share else prs)
        if not share or ax.get_subplotspec().is_first_col():
            literal(ax.set_ylabel(plain(names[panel])))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    _legend(fig, [(v, colour[v]) for v in variants if v], markers)
    literal(fig.suptitle(plain(fold(title, 40 * ncols))))
    return fig


def _nothing_to_plot(title: str):
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "No run has a training history to plot.", ha="center", va="center")
    literal(fig.suptitle(plain(title)))
    return fig


def _zoom_past_first_epoch(ax, runs: list[dict]) -> None:
    """Y-limits from epoch 2 on when the first epoch's loss would flatten the rest: it starts
    from random weights, often several times higher than anything after. Its points stay
    drawn, above the axis, with a note of how high they reach in the axis label; ``log = true`` shows them all."""
    later = _finite(v for e in runs for k in ("train_loss", "val_loss")
                    for v in _series(e["history"][1:], k))
    first = _finite(v for e in runs for k in ("train_loss", "val_loss")
                    for v in _series(e["history"][:1], k))
    if len(later) < 2 or not first:
        return
    lo, hi = min(later), max(later)
    span = hi - lo or abs(hi) or 1.0
    if max(first) - lo <= 3 * span:  # the first epoch is on the scale of the rest: nothing to do
        return
    ax.set_ylim(min(lo, min(first)) - 0.08 * span, hi + 0.15 * span)
    # in the axis label: inside the panel it would cross the "stopped at epoch N" notes
    ax.set_xlabel(f"epoch (epoch 1 above the axis: up to {max(first):.3g})")


def _draw_run(ax, e: dict, c: str, markers: dict) -> tuple[int, bool]:
    """One run's curves (and seed band) in colour ``c``, its best epoch and how it ended; sets
    the ``markers`` the legend must explain. Returns (its last epoch, has a penalty term)."""
    hist = e["history"]
    epochs = [int(h["epoch"]) for h in hist]
    train, val = _series(hist, "train_loss"), _series(hist, "val_loss")
    has_val = bool(_finite(val))
    style = {"marker": "o", "ms": 3} if len(epochs) == 1 else {}
    ax.plot(epochs, train, "--", color=c, lw=1.3, **style)
    if has_val:
        ax.plot(epochs, val, "-", color=c, lw=1.8, **style)
    for key, alpha in (("val_loss", 0.25), ("train_loss", 0.1)):
        if key in e.get("band", {}):
            lo, hi = e["band"][key]
            ax.fill_between(epochs, lo, hi, color=c, alpha=alpha, lw=0)
            markers["band"] = True
    curve = val if has_val else train
    best = e.get("best_epoch")
    if best in epochs and math.isfinite(curve[epochs.index(best)]):
        ax.plot(best, curve[epochs.index(best)], "o", color=c, ms=7, mec="black", mew=0.6, zorder=3)
        markers["best"] = True
    _mark_end(ax, e, epochs, curve, c, markers)
    return epochs[-1], any(h.get("train_penalty") or 0 for h in hist)


def _mark_end(ax, e: dict, epochs: list[int], curve: list[float], c: str, markers: dict) -> None:
    """A dotted line where early stopping ended the run (and an ``x``) or where it diverged
    (and a star on its last finite value)."""
    status = e.get("status")
    if e.get("stopped_early") or status == "stopped_early":
        stop = epochs[-1]
        ax.axvline(stop, color=c, ls=":", lw=1)
        if math.isfinite(curve[-1]):
            ax.plot(stop, curve[-1], "x", color=c, ms=8, mew=2, zorder=3)
        ax.annotate(f"stopped at epoch {stop}", xy=(stop, 0.98), xycoords=("data", "axes fraction"),
                    rotation=90, ha="right", va="top", fontsize=7, color=c)
        markers["stopped"] = True
    elif status == "diverged":
        finite = [i for i, y in enumerate(curve) if math.isfinite(y)]
        if finite:
            i = finite[-1]
            ax.plot(epochs[i], curve[i], "*", color=c, ms=11, mec="black", mew=0.6, zorder=3)
        ax.axvline(epochs[-1], color=c, ls=":", lw=1)
        ax.annotate(f"diverged at epoch {epochs[-1]}", xy=(epochs[-1], 0.98),
                    xycoords=("data", "axes fraction"), rotation=90, ha="right", va="top",
                    fontsize=7, color=c)
        markers["diverged"] = True


def _legend(fig, variants: list[tuple[str, str]], markers: dict) -> None:
    """One legend under the panels: the swept values' colours, line styles and the markers used."""
    handles = [Line2D([], [], color=c, lw=2, label=plain(v)) for v, c in variants]
    handles += [Line2D([], [], color="0.3", ls="--", label="training"),
                Line2D([], [], color="0.3", ls="-", lw=1.8, label="validation")]
    if markers["best"]:
        handles.append(Line2D([], [], color="0.3", marker="o", ls="", mec="black", label="best epoch"))
    if markers["stopped"]:
        handles.append(Line2D([], [], color="0.3", marker="x", ls="", mew=2, label="stopped early"))
    if markers["diverged"]:
        handles.append(Line2D([], [], color="0.3", marker="*", ms=10, ls="", label="diverged"))
    if markers["band"]:
        handles.append(Patch(color="0.3", alpha=0.25, label="mean ± std over seeds"))
    legend = fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6),
                        fontsize=8, frameon=False)
    literal(*legend.get_texts())
