"""Steps that draw: learning curves, reconstructions, denoising, codes as images, the latent space."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from ._base import Runs, Shown, eval_split, register_step


@register_step("loss_curves")
def step_loss_curves(ctx, runs: Runs = None,
                     log: Annotated[bool, Field(description="logarithmic loss axis")] = False):
    """Training and validation loss per epoch, one panel per model, one colour per swept value."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import loss_curves

    entries = [r.to_json() for r in ctx.selected(runs)]
    ctx.save_figure("loss_curves", loss_curves(entries, f"{ctx.study.name}: learning curves", log=log),
                    "Training (dashed) and validation (solid) loss per epoch, one panel per model; "
                    "a marker shows the best epoch and where early stopping ended a run.")


@register_step("reconstructions")
def step_reconstructions(ctx, runs: Runs = None, n: Annotated[Shown, Field(description=(
        "test images shown"))] = 15):
    """Originals vs reconstructions of the first ``n`` test images, one figure per run."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import compare_reconstructions

    test = eval_split(ctx)
    for r, model in ctx.trained(runs):
        loss = f", test loss {r.test_loss:.4f}" if r.test_loss is not None else ""
        fig = compare_reconstructions(model, test, n, title=f"{r.name}: test reconstructions{loss}")
        ctx.save_figure(f"reconstructions-{r.name}", fig,
                        f"The first {n} test images (top) and their reconstructions by {r.name} "
                        f"(bottom){loss}; pixel values shown clipped to [0, 1].")


@register_step("denoising")
def step_denoising(ctx, runs: Runs = None, n: Annotated[Shown, Field(description="test images shown")] = 10):
    """Noisy test inputs, the model's output and the clean targets, for the runs trained with
    ``input_noise`` (default: all of them)."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import denoising_grid

    for r, model in ctx.trained(runs):
        noise = _train_config(ctx, r).input_noise
        if not noise and runs is None:
            continue
        noise = noise or 0.5
        fig = denoising_grid(model, eval_split(ctx), noise, n, seed=r.seed,
                             title=f"{r.name}: noise {noise}·N(0, 1), clipped to [0, 1]")
        ctx.save_figure(f"denoising-{r.name}", fig,
                        f"Noisy test inputs (top), {r.name}'s output (middle) and the clean "
                        "targets (bottom).")


def _train_config(ctx, record):
    """The run's training settings as planned (its input noise, for one)."""
    return next(s.train for s in ctx.study.runs if s.name == record.name)


@register_step("code_images")
def step_code_images(ctx, runs: Runs = None, n: Annotated[Shown, Field(description="test images shown")] = 10):
    """The codes of the first ``n`` test images drawn as images (the blog's conv encodings), for
    runs whose codes are images (default: every such run)."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import code_images

    for r, model in ctx.trained(runs):
        if runs is None and len(getattr(model, "code_shape", ())) != 3:
            continue
        ctx.save_figure(f"codes-{r.name}", code_images(model, eval_split(ctx), n, title=f"{r.name}: codes"),
                        f"The first {n} test images and their codes under {r.name}, each code "
                        "channel drawn as a small image.")


@register_step("latent_space")
def step_latent_space(ctx, runs: Runs = None, n: Annotated[Shown, Field(
        description="the decoded manifold is n×n")] = 15):
    """A scatter of the test set's latent means coloured by class, and an n×n decoded manifold
    (default: the runs of variational models)."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots import latent_manifold, latent_scatter

    test = eval_split(ctx)
    for r, model in ctx.trained(runs):
        if runs is None and r.model != "vae":
            continue
        model.eval()
        with torch.inference_mode():
            codes = model.encode(test.x.to(next(model.parameters()).device)).cpu()
        if codes.dim() != 2 or codes.shape[1] < 2:
            ctx.summary.append(f"latent_space: run {r.name} has codes of shape {tuple(codes.shape[1:])}, "
                               "not a flat code of 2 or more dimensions; no latent plots.")
            continue
        ctx.save_figure(f"latent-{r.name}", latent_scatter(codes, test.y, test.class_names,
                                                           title=f"{r.name}: test set in latent space"),
                        f"The test images' latent means under {r.name} (first two dimensions), "
                        "coloured by class.")
        ctx.save_figure(f"manifold-{r.name}", latent_manifold(model, n, title=f"{r.name}: decoded {n}×{n} manifold"),
                        f"Images decoded by {r.name} from an {n}×{n} grid of latent points at "
                        "Gaussian quantiles 0.05-0.95.")
