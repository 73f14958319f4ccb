"""Figures as a reader sees them: panels, legends, axis labels, markers, literal names, images."""

import io
import math
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")  # the test process draws to files; the library itself chooses no backend
import matplotlib.pyplot as plt  # noqa: E402

from aelab.report import plots  # noqa: E402


def history(n, start=0.30, floor=0.22, penalty=0.0, nan_from=None):
    """n epochs of falling losses (train below val); NaN from epoch ``nan_from`` on."""
    out = []
    for i in range(1, n + 1):
        val = floor + (start - floor) * math.exp(-i / 4)
        rec = {"epoch": i, "train_loss": val - 0.01, "train_recon": val - 0.01 - penalty,
               "train_penalty": penalty, "val_loss": val, "seconds": 1.0}
        if nan_from is not None and i >= nan_from:
            rec["train_loss"] = rec["val_loss"] = math.nan
        out.append(rec)
    return out


def run(name, label, batch, epochs, best, stopped=True, **extra):
    """A run record as metrics.json holds it."""
    entry = {"name": name, "model": "stacked", "label": label, "params": {},
             "sweep": {"batch_size": batch}, "batch_size": batch, "optimizer": "nadam",
             "learning_rate": 1e-4, "status": "stopped_early" if stopped else "completed",
             "epochs_run": epochs, "stopped_early": stopped, "best_epoch": best,
             "train_loss": 0.21, "val_loss": 0.2192, "test_loss": 0.2201, "seconds": 12.0,
             "seconds_per_epoch": 12.0 / epochs, "peak_rss_mb": 500.0, "history": history(epochs),
             "loss_name": "binary cross-entropy"}
    entry.update(extra)
    return entry


def shoes():
    """The fashion-shoes study's four runs: two models × batch sizes 32 and 256."""
    return [run("stacked-bs32", "stacked", 32, 14, 9), run("stacked-bs256", "stacked", 256, 30, 25),
            run("sparse-bs32", "sparse", 32, 12, 7, history=history(12, penalty=1e-3)),
            run("sparse-bs256", "sparse", 256, 26, 21, history=history(26, penalty=1e-3))]


def panels(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    plt.close(fig)
    return buf.getvalue()


def test_loss_curves_one_panel_per_model_one_colour_per_batch_size():
    fig = plots.loss_curves(shoes(), "fashion-shoes: learning curves")
    axes = panels(fig)
    assert [ax.get_title().splitlines()[0] for ax in axes] == ["stacked", "sparse"]
    assert "regulariser" in axes[1].get_title() and "regulariser" not in axes[0].get_title()
    for ax in axes:
        curves = [line for line in ax.get_lines() if line.get_linestyle() in ("-", "--")]
        assert sorted(line.get_linestyle() for line in curves) == ["-", "-", "--", "--"]
        assert len([line for line in ax.get_lines() if line.get_linestyle() == ":"]) == 2
        # the same batch size has the same colour in train and val, and in both panels
        by_colour = {}
        for line in curves:
            by_colour.setdefault(line.get_color(), set()).add(line.get_linestyle())
        assert list(by_colour.values()) == [{"--", "-"}, {"--", "-"}]
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        texts = [t.get_text() for t in ax.texts]
        assert len([t for t in texts if t.startswith("stopped at epoch")]) == 2
    assert {line.get_color() for line in panels(fig)[0].get_lines()} == \
           {line.get_color() for line in panels(fig)[1].get_lines()}
    assert axes[0].get_ylabel() == "binary cross-entropy"
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["batch 32", "batch 256", "training", "validation", "best epoch", "stopped early"]
    assert "stopped at epoch 14" in [t.get_text() for t in axes[0].texts]
    assert png(fig)[:4] == b"\x89PNG"


def test_loss_curves_mark_the_best_epoch_on_the_validation_curve():
    fig = plots.loss_curves([run("stacked-bs32", "stacked", 32, 14, 9)])
    ax = panels(fig)[0]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o" and len(line.get_xdata()) == 1]
    assert len(dots) == 1 and dots[0].get_xdata()[0] == 9
    assert dots[0].get_ydata()[0] == pytest.approx(history(14)[8]["val_loss"])
    plt.close(fig)


def test_loss_curves_skip_untrained_runs_and_draw_diverged_ones_up_to_divergence():
    entries = [run("lr-0.001", "conv", 64, 10, 10, stopped=False, sweep={"learning_rate": 0.001}),
               run("lr-0.1", "conv", 64, 4, 2, stopped=False, status="diverged",
                   sweep={"learning_rate": 0.1}, history=history(4, nan_from=4)),
               {"name": "baseline", "status": "failed", "history": []},
               {"name": "probe", "probe_accuracy": 0.9}]
    fig = plots.loss_curves(entries, log=True)
    (ax,) = panels(fig)
    assert ax.get_title() == "conv" and ax.get_yscale() == "log"
    assert "diverged at epoch 4" in [t.get_text() for t in ax.texts]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_xdata()[0] == 3  # the last finite epoch
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["lr 0.001", "lr 0.1"] and "diverged" in legend
    assert png(fig)[:4] == b"\x89PNG"


def test_loss_curves_with_no_history_say_so():
    fig = plots.loss_curves([{"name": "a", "status": "failed", "history": []}])
    assert "No run has a training history" in fig.axes[0].texts[0].get_text()
    assert png(fig)[:4] == b"\x89PNG"


def test_loss_curves_label_the_axis_with_the_loss_name():
    sse = run("a", "conv-transposed", 64, 5, 5, stopped=False, params={"loss": "sse"})
    del sse["loss_name"]
    fig = plots.loss_curves([sse])
    assert panels(fig)[0].get_ylabel() == "sum of squared errors"
    plt.close(fig)
    default = run("b", "stacked", 64, 5, 5, stopped=False)
    del default["loss_name"]
    assert plots.loss_name(default) == "binary cross-entropy"  # the model's registered default
    assert plots.loss_name({"name": "x"}) == "loss"


def test_loss_curves_with_different_scales_do_not_share_the_y_axis():
    vae = run("vae", "vae", 100, 5, 5, stopped=False, history=history(5, start=190, floor=150))
    fig = plots.loss_curves([run("simple", "simple", 256, 5, 5, stopped=False), vae])
    a, b = panels(fig)
    assert not a.get_shared_y_axes().joined(a, b)
    assert a.get_ylabel() == b.get_ylabel() == "binary cross-entropy"
    plt.close(fig)


def test_user_text_is_drawn_literally_never_as_mathtext():
    name = r"$\alpha^$"
    entries = [run(name, name, 32, 5, 3), run(name + "2", name, 256, 5, 3)]
    fig = plots.loss_curves(entries, title=f"study {name}")
    assert png(fig)[:4] == b"\x89PNG"  # drawing did not fail on a mathtext parse error
    suptitle = fig._suptitle
    assert suptitle._preprocess_math(suptitle.get_text()) == (r"study $\alpha^$", False)
    ax = panels(fig)[0]
    assert ax.title._preprocess_math(ax.title.get_text()) == (name, False)

    model = _model()
    fig = plots.compare_reconstructions(model, torch.rand(3, 784), n=3, title=f"{name}: test")
    assert png(fig)[:4] == b"\x89PNG"
    assert fig._suptitle._preprocess_math(fig._suptitle.get_text()) == (rf"{name}: test", False)


def _model():
    from aelab.models import create_model

    torch.manual_seed(0)
    return create_model("simple")


def _grid_images(fig, n):
    """(top row, bottom row) of the 2×n grid as arrays of the drawn pixels."""
    axes = fig.axes
    top = np.stack([np.asarray(axes[c].images[0].get_array()) for c in range(n)])
    bottom = np.stack([np.asarray(axes[n + c].images[0].get_array()) for c in range(n)])
    return top, bottom


@pytest.mark.parametrize("form", ["tensor flat", "tensor 2-D", "tensor NCHW", "numpy flat",
                                  "numpy 2-D", "numpy NCHW", "numpy uint8", "tensor uint8",
                                  "dataset"])
def test_compare_reconstructions_takes_what_a_notebook_has(form):
    from aelab.datasets import Dataset

    model = _model()
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (6, 1, 28, 28), generator=gen, dtype=torch.uint8)
    x = pixels.float() / 255  # (N, 1, 28, 28) in [0, 1]
    images = {
        "tensor flat": x.reshape(6, 784), "tensor 2-D": x[:, 0], "tensor NCHW": x,
        "numpy flat": x.reshape(6, 784).numpy(), "numpy 2-D": x[:, 0].numpy(),
        "numpy NCHW": x.numpy(), "numpy uint8": pixels[:, 0].numpy(), "tensor uint8": pixels,
        "dataset": Dataset("t", x, None, []),
    }[form]
    fig = plots.compare_reconstructions(model, images, n=4, title="run: test reconstructions")
    assert len(fig.axes) == 8
    top, bottom = _grid_images(fig, 4)
    np.testing.assert_allclose(top, x[:4, 0].numpy(), atol=1e-6)
    model.eval()
    with torch.no_grad():
        expected = model(x[:4])[:, 0].numpy()
    np.testing.assert_allclose(bottom, expected, atol=1e-5)
    assert png(fig)[:4] == b"\x89PNG"


def test_compare_reconstructions_clips_to_the_unit_range_and_rejects_wrong_shapes():
    model = _model()
    x = torch.linspace(-1, 2, 784).repeat(2, 1)
    fig = plots.compare_reconstructions(model, x, n=2)
    top, bottom = _grid_images(fig, 2)
    assert top.min() == 0 and top.max() == 1 and 0 <= bottom.min() and bottom.max() <= 1
    plt.close(fig)
    with pytest.raises(ValueError, match=r"do not fit the model's input shape \(1, 28, 28\)"):
        plots.compare_reconstructions(model, np.zeros((2, 30, 30)))


def test_reconstruction_title_names_the_run_and_its_test_loss():
    title = plots.reconstruction_title(run("stacked-bs256", "stacked", 256, 30, 25))
    assert title == "stacked-bs256: test reconstructions, test loss 0.2201 (binary cross-entropy)"
    assert plots.reconstruction_title({"name": "x", "test_loss": math.nan}) == "x: test reconstructions"


def test_importing_plots_leaves_the_backend_alone():
    code = ("import matplotlib; matplotlib.use('svg'); import aelab.report.plots; "
            "import aelab.report.html; print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_loss_curves_span_the_runs_not_the_budget_and_zoom_past_the_first_epoch():
    """Issue 21: runs stopped at 14-20 of 50 epochs filled a third of the panel, and the first
    epoch's spike (0.69 from random weights) flattened the rest."""
    def spiky(n):
        h = history(n)
        h[0] = {**h[0], "train_loss": 0.69, "val_loss": 0.66}
        return h

    runs = [run("stacked-bs32", "stacked", 32, 14, 9, epochs_max=50, history=spiky(14)),
            run("stacked-bs256", "stacked", 256, 20, 15, epochs_max=50, history=spiky(20))]
    ax = panels(plots.loss_curves(runs))[0]
    assert ax.get_xlim() == (0.5, 20.5)
    later = [v for r in runs for h in r["history"][1:] for v in (h["train_loss"], h["val_loss"])]
    lo, hi = ax.get_ylim()
    assert hi < 0.66 and lo <= min(later) and hi >= max(later)  # epoch 1 above, the rest fills it
    assert ax.get_xlabel() == "epoch (epoch 1 above the axis: up to 0.69)"
    plt.close("all")
    log = panels(plots.loss_curves(runs, log=True))[0]
    assert log.get_ylim()[1] >= 0.69 and log.get_xlabel() == "epoch"  # the log axis shows it all
    flat = panels(plots.loss_curves([run("a", "a", 32, 14, 9)]))[0]
    assert flat.get_xlabel() == "epoch" and flat.get_ylim()[1] >= history(14)[0]["val_loss"]  # no zoom
    plt.close("all")
