"""Figures as pure functions from results to matplotlib figures (the caller saves or shows them).

Importing this module chooses no backend: that belongs to the program (the CLI picks Agg), so a
notebook keeps its inline backend. Text that comes from users (run names, titles, class names)
goes through :func:`plain`, so a ``$`` in a name is drawn as a dollar sign, never parsed as
mathtext (``$\\alpha^$`` would otherwise stop the figure from drawing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

# sweep keys -> how a legend names them ("batch 32", "lr 0.01")
SWEEP_NAMES = {"batch_size": "batch", "learning_rate": "lr", "optimizer": "", "input_noise": "noise"}
LOSS_NAMES = {"bce": "binary cross-entropy", "mse": "mean squared error", "sse": "sum of squared errors"}


def plain(text) -> str:
    """User text drawn literally: ``$`` escaped so matplotlib never reads it as mathtext."""
    return str(text).replace("$", r"\$")


def _fold(text: str, width: int) -> str:
    """Long text in lines of at most ``width`` characters, broken after a space, "-", "/", "_"
    or "." where possible, so a long run name does not run into the next panel."""
    import re

    lines = [""]
    for tok in re.findall(r"[^\s/_.-]*[\s/_.-]|[^\s/_.-]+", text):
        while len(tok) > width:
            room = width - len(lines[-1])
            lines[-1] += tok[:room]
            tok = tok[room:]
            lines.append("")
        if len(lines[-1]) + len(tok.rstrip()) > width:
            lines.append("")
        lines[-1] += tok
    return "\n".join(line.rstrip() for line in lines if line.strip())


def _literal(*artists) -> None:
    """No LaTeX for user text even when rcParams["text.usetex"] is on."""
    for a in artists:
        a.set_usetex(False)


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
            from ..models import model_params

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


def loss_curves(entries: list[dict], title: str = "Learning curves", log: bool = False,
                panel_key: str = "label"):
    """Small multiples: one panel per model entry (``panel_key``), one colour per swept value
    (the same colour in every panel), training dashed and validation solid, integer epochs.

    The best epoch is a dot on the validation curve; a run stopped early gets an ``x`` and a
    dotted line "stopped at epoch N"; a diverged run is drawn up to its last finite epoch and
    marked there. Runs without a history (not trained, failed) are skipped. ``entries`` are the
    run records of metrics.json.
    """
    runs = [e for e in entries if e.get("history")]
    panels: dict[str, list[dict]] = {}
    for e in runs:
        key = e.get(panel_key) or e.get("label") or e.get("model") or e.get("name", "?")
        panels.setdefault(str(key), []).append(e)
    panels = {k: _repeats_as_means(v) for k, v in panels.items()}
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No run has a training history to plot.", ha="center", va="center")
        _literal(fig.suptitle(plain(title)))
        return fig

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
    for ax, (panel, prs) in zip(axes.flat, panels.items()):
        last_epoch = 1
        penalty = False
        for e in prs:
            hist = e["history"]
            c = colour[variant(e, prs)]
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
            penalty |= any(h.get("train_penalty") or 0 for h in hist)
            last_epoch = max(last_epoch, epochs[-1], int(e.get("epochs_max") or 0))
            best = e.get("best_epoch")
            if best in epochs and math.isfinite(curve[epochs.index(best)]):
                ax.plot(best, curve[epochs.index(best)], "o", color=c, ms=7, mec="black", mew=0.6,
                        zorder=3)
                markers["best"] = True
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
        head = plain(_fold(panel, 40)) + ("\n(loss includes the regulariser)" if penalty else "")
        _literal(ax.set_title(head, fontsize=10))
        ax.set_xlim(0.5, last_epoch + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        if log:
            ax.set_yscale("log")
        if not share or ax.get_subplotspec().is_first_col():
            _literal(ax.set_ylabel(plain(names[panel])))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)

    handles = [Line2D([], [], color=colour[v], lw=2, label=plain(v)) for v in variants if v]
    handles += [Line2D([], [], color="0.3", ls="--", label="training"),
                Line2D([], [], color="0.3", ls="-", lw=1.8, label="validation")]
    if markers["best"]:
        handles.append(Line2D([], [], color="0.3", marker="o", ls="", mec="black", label="best epoch"))
    if markers["stopped"]:
        handles.append(Line2D([], [], color="0.3", marker="x", ls="", mew=2, label="stopped early"))
    if markers["diverged"]:
        handles.append(Line2D([], [], color="0.3", marker="*", ms=10, ls="", label="diverged"))
    if markers["band"]:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.3", alpha=0.25, label="mean ± std over seeds"))
    legend = fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6),
                        fontsize=8, frameon=False)
    _literal(*legend.get_texts())
    _literal(fig.suptitle(plain(_fold(title, 40 * ncols))))
    return fig


def image_grid(rows: list[torch.Tensor], row_labels: list[str], title: str = ""):
    """Rows of (n, C, H, W) or (n, H, W) images in [0, 1] as a grid with a label per row."""
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.1 + 0.4), squeeze=False)
    for r, (imgs, label) in enumerate(zip(rows, row_labels)):
        imgs = torch.as_tensor(imgs)
        if imgs.dim() == 3:
            imgs = imgs[:, None]
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                img = imgs[c].detach().float().cpu().clamp(0, 1)
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="binary", vmin=0, vmax=1)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
        _literal(axes[r, 0].set_title(plain(label), loc="left", fontsize=9))
    if title:
        _literal(fig.suptitle(plain(title)))
    fig.tight_layout()
    return fig


def as_images(images, input_shape: Sequence[int] | None = None) -> torch.Tensor:
    """Images as a float (N, C, H, W) tensor, from what a notebook has at hand.

    ``images``: a tensor, a NumPy array or a ``data.Dataset`` (its ``.x``), shaped (N, H*W),
    (N, H, W), (N, C, H, W) or (N, H, W, C); uint8 pixels are divided by 255. With
    ``input_shape`` (C, H, W), e.g. a model's, the images are reshaped to it.
    """
    x = getattr(images, "x", images)
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    x = x.detach().cpu()
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if input_shape is None:
        if x.dim() == 2:  # (N, H*W): square grayscale images
            side = math.isqrt(x.shape[1])
            if side * side != x.shape[1]:
                raise ValueError(f"Cannot tell the image shape of rows of {x.shape[1]} values; "
                                 "pass input_shape=(C, H, W).")
            return x.reshape(len(x), 1, side, side)
        return x[:, None] if x.dim() == 3 else x
    shape = tuple(int(s) for s in input_shape)
    if tuple(x.shape) == shape or (len(shape) == 3 and tuple(x.shape) == shape[1:]):
        x = x[None]  # one image
    if tuple(x.shape[1:]) == shape:
        return x
    if x.dim() == 4 and len(shape) == 3 and tuple(x.shape[1:]) == (shape[1], shape[2], shape[0]):
        return x.permute(0, 3, 1, 2).contiguous()  # channels last
    if x.dim() >= 2 and x[0].numel() == math.prod(shape):
        return x.reshape(len(x), *shape)
    raise ValueError(f"Images of shape {tuple(x.shape[1:])} do not fit the model's input shape "
                     f"{shape}; pass (N, {math.prod(shape)}), (N, H, W) or (N, C, H, W) images.")


def reconstruction_title(entry: dict) -> str:
    """ "stacked-bs256: test reconstructions, test loss 0.2420 (binary cross-entropy)" from a
    run record; the loss is left out when the run has none."""
    title = f"{entry.get('name', '?')}: test reconstructions"
    test = entry.get("test_loss")
    if isinstance(test, (int, float)) and math.isfinite(test):
        title += f", test loss {test:.4f} ({loss_name(entry)})"
    return title


def compare_reconstructions(model, images, n: int = 15, title: str = ""):
    """A 2×n grid: the first ``n`` images on top, their reconstructions below, clipped to [0, 1].

    ``images`` as :func:`as_images` takes them (tensor, NumPy array or Dataset; flat, 2-D or
    with channels; float or uint8). Returns the figure.
    """
    x = as_images(getattr(images, "x", images)[:n], getattr(model, "input_shape", None))
    recon = _predict(model, lambda m, v: m(v), x)
    return image_grid([x.clamp(0, 1), recon.clamp(0, 1)], ["original", "reconstruction"], title)


# ---------------------------------------------------------------- sparse codes and novelty (SPEC 1.3, 1.5)


def filter_grid(filters: torch.Tensor, title: str = "", ncols: int = 16):
    """(n, C, H, W) filters in [0, 1] (e.g. evaluate.decoder_filters) tiled into one image with
    1-pixel white gaps (one imshow: 64 subplots would take seconds to draw)."""
    f = filters.detach().float().cpu()
    n, c, h, w = f.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    tiles = torch.ones(nrows * ncols, c, h + 1, w + 1)
    tiles[:n, :, :h, :w] = f
    mosaic = tiles.view(nrows, ncols, c, h + 1, w + 1).permute(0, 3, 1, 4, 2)
    mosaic = mosaic.reshape(nrows * (h + 1), ncols * (w + 1), c)[:-1, :-1]
    fig, ax = plt.subplots(figsize=(ncols * 0.6, nrows * 0.6 + 0.5))
    ax.imshow(mosaic[..., 0].numpy() if c == 1 else mosaic.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if title:
        _literal(ax.set_title(plain(title)))
    fig.tight_layout()
    return fig


def confusion_matrix(confusion, class_names: list[str], title: str = ""):
    """A confusion matrix (rows: true class, columns: predicted) labelled by class name."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=[plain(c) for c in class_names]).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45)
    _literal(ax.set_title(plain(title)), *ax.get_xticklabels(), *ax.get_yticklabels())
    fig.tight_layout()
    return fig


def accuracy_vs_k(points: dict[str, list[tuple[int, float]]], baselines: dict[str, float],
                  title: str = "Accuracy against k"):
    """One line per metric (name -> [(k, accuracy)]), dotted horizontal lines for baselines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, pts) in enumerate(points.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=f"C{i}", label=plain(name))
    for i, (name, value) in enumerate(baselines.items()):
        ax.axhline(value, ls=":", color=f"C{i + len(points)}", label=plain(name))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (code units kept per sample in training)")
    ax.set_ylabel("test accuracy")
    _literal(ax.set_title(plain(title)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def score_histogram(seen, unseen, title: str = "", xlabel: str = "reconstruction error"):
    """Overlaid density histograms of novelty scores of seen and unseen classes."""
    seen, unseen = np.asarray(seen), np.asarray(unseen)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([seen, unseen]), bins=60)
    ax.hist(seen, bins=bins, density=True, alpha=0.6, label=f"seen classes (n={len(seen):,})")
    ax.hist(unseen, bins=bins, density=True, alpha=0.6, label=f"unseen classes (n={len(unseen):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    _literal(ax.set_title(plain(title)))
    ax.legend()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the autoencoder zoo (SPEC 1.2)


def _predict(model, fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(model, x)`` in eval mode without autograd, on the model's device, back on the CPU."""
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = fn(model, x.to(p.device, p.dtype)).float().cpu()
    model.train(was_training)
    return out


def denoising_grid(model, images, noise: float, n: int = 10, seed: int = 0, title: str = ""):
    """Three rows: noisy inputs (x + noise·N(0, 1), clipped), the model's output, clean targets."""
    from ..train import add_noise

    x = as_images(getattr(images, "x", images)[:n], getattr(model, "input_shape", None))
    noisy = add_noise(x, noise, torch.Generator().manual_seed(seed))
    out = _predict(model, lambda m, v: m(v), noisy)
    return image_grid([noisy, out.clamp(0, 1), x], ["noisy input", "denoised", "clean target"], title)


def code_images(model, images, n: int = 10, title: str = ""):
    """Originals above their codes; a (C, h, w) code is drawn as its C channels side by side,
    scaled by the largest value shown (the blog's "encoded representations")."""
    x = as_images(getattr(images, "x", images)[:n], getattr(model, "input_shape", None))
    z = _predict(model, lambda m, v: m.encode(v), x)
    if z.dim() == 2:  # a flat code: one row of pixels
        z = z[:, None, None, :]
    c, h, w = z.shape[1:]
    cols = next(d for d in range(1, c + 1) if c % d == 0 and d * d >= c)  # 8 channels: 2 rows of 4
    tiles = z.view(-1, c // cols, cols, h, w).permute(0, 1, 3, 2, 4).reshape(-1, 1, c // cols * h, cols * w)
    tiles = tiles / tiles.abs().max().clamp_min(1e-12)
    return image_grid([x, tiles.clamp(0, 1)], ["original", f"code: {c} channels of {h}×{w}"], title)


def latent_scatter(codes: torch.Tensor, labels, class_names=(), title: str = ""):
    """2-D codes of the test images, one colour per class (the first two dimensions if more)."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    c = None if labels is None else torch.as_tensor(labels).numpy()
    pts = ax.scatter(codes[:, 0].numpy(), codes[:, 1].numpy(), c=c, cmap="tab10", s=6, alpha=0.8)
    if c is not None:
        bar = fig.colorbar(pts, ax=ax, ticks=range(len(class_names) or int(c.max()) + 1))
        if class_names:
            _literal(*bar.ax.set_yticklabels([plain(c) for c in class_names]))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    _literal(ax.set_title(plain(title or "latent space")))
    fig.tight_layout()
    return fig


def latent_manifold(model, n: int = 15, title: str = ""):
    """Decode an n×n grid of 2-D codes at Gaussian quantiles 0.05..0.95 (the blog's manifold);
    z[0] runs left to right, z[1] bottom to top, further latent dimensions stay at 0."""
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    latent = model.code_shape[0]
    z = torch.zeros(n * n, latent)
    z[:, 0] = q.repeat(n)
    if latent > 1:
        z[:, 1] = q.flip(0).repeat_interleave(n)
    imgs = _predict(model, lambda m, v: m.decode(v), z).clamp(0, 1)  # (n*n, C, H, W)
    c, h, w = imgs.shape[1:]
    sheet = imgs.view(n, n, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, n * h, n * w)
    fig, ax = plt.subplots(figsize=(7, 7))
    if c == 1:
        ax.imshow(sheet[0].numpy(), cmap="binary", vmin=0, vmax=1)
    else:
        ax.imshow(sheet.permute(1, 2, 0).numpy())
    ax.axis("off")
    _literal(ax.set_title(plain(title or f"decoded {n}×{n} manifold")))
    fig.tight_layout()
    return fig
