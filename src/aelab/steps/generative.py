"""Steps for generative autoencoders (SPEC 1.6): the importance-sampled likelihood, and samples
from the prior."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..errors import ConfigError
from ..evaluate.likelihood import (
    binarize,
    fit_code_prior,
    has_likelihood,
    importance_nll,
    sample_code_map,
    uniform_code_prior,
)
from ..params import validate
from ..registry import MODELS
from ._base import Count, Runs, eval_split, register_step, run_names, summary_line

LIKELIHOOD_MODELS = ("vae", "beta-vae", "conv-vae")


def named_specs(runs: list, names: list[str] | None) -> list:
    """The planned runs (plan.RunSpec) a step's ``runs`` names, with their model parameters
    complete (defaults filled in), for load-time checks."""
    chosen = [r for r in runs if names and set(run_names(r)) & set(names)]
    return [(r, validate(MODELS.get(r.model).fn, r.params, r.where)) for r in chosen]


def _check_likelihood(params, runs, data, where) -> None:
    """Runs named explicitly must have a decoder likelihood: a VAE-family model, trained with BCE
    unless its decoder is Gaussian."""
    for spec, p in named_specs(runs, params["runs"]):
        if spec.model not in LIKELIHOOD_MODELS or p.get("loss", "bce") != "bce":
            raise ConfigError(f"{where}.runs: run {spec.name} ({spec.model}) has no decoder likelihood to "
                              f"score; likelihood takes {', '.join(LIKELIHOOD_MODELS)} models trained with BCE "
                              "or a Gaussian decoder.")


def _scored_data(model, x: torch.Tensor, data: str, seed: int) -> tuple[torch.Tensor, str]:
    """The images scored and how they were made, in words for the summary."""
    gaussian = getattr(model, "likelihood", None) == "gaussian"
    if data == "binarized" or (data == "auto" and not gaussian):
        return binarize(x, seed), f"binarized (seed {seed})"
    return x, "grey levels"


@register_step("likelihood", produces=("nll", "neg_elbo", "nll_k", "nll_data"), check=_check_likelihood)
def step_likelihood(ctx, runs: Runs = None,
                    k: Annotated[int, Field(ge=1, le=100_000, description=(
                        "importance samples per image (pythae and Burda et al. use 200)"))] = 200,
                    n: Annotated[int, Field(ge=1, le=1_000_000, description=(
                        "test images scored (the first n)"))] = 10_000,
                    data: Annotated[Literal["auto", "binarized", "grey"], Field(description=(
                        "binarized: each pixel 1 with probability its grey level, drawn once with "
                        "binarize_seed; grey: the grey levels themselves; auto: binarized for "
                        "Bernoulli decoders, grey for Gaussian ones"))] = "auto",
                    binarize_seed: Annotated[int, Field(ge=0, le=2**31 - 1, description=(
                        "seed of the binarisation, the same for every model"))] = 0,
                    batch: Annotated[int, Field(ge=1, le=10_000_000, description=(
                        "images × samples decoded at once (memory)"))] = 20_000):
    """Importance-sampled negative log-likelihood -log p(x) in nats per image, beside the -ELBO
    (Burda et al. 2016), for models with a decoder likelihood (default: every such run; the
    others are named and skipped): ``nll``, ``neg_elbo``, ``nll_k``, ``nll_data``."""
    x = eval_split(ctx).x[:n]
    lines = [f"Negative log-likelihood of {len(x):,} test images (nats per image, {k} importance "
             "samples; -ELBO beside it):"]
    skipped = []
    for r, model in ctx.trained(runs):
        if not has_likelihood(model):
            skipped.append(r.name)
            continue
        scored, how = _scored_data(model, x, data, binarize_seed)
        res = importance_nll(model, scored, k=k, batch=batch,
                             generator=torch.Generator().manual_seed(ctx.study.seed))
        r.metrics.update(nll=res["nll"], neg_elbo=res["neg_elbo"], nll_k=k, nll_data=how)
        lines.append(summary_line(r.name, {"NLL": res["nll"], "-ELBO": res["neg_elbo"], "data": how}))
    if skipped:
        lines.append(f"- not scored (no decoder likelihood): {', '.join(skipped)}")
    ctx.summary.extend(lines)


@register_step("samples")
def step_samples(ctx, runs: Runs = None,
                 n: Annotated[Count, Field(description="samples drawn")] = 64,
                 ncols: Annotated[int, Field(ge=1, le=100, description="samples per row")] = 16,
                 code_prior: Annotated[Literal["fitted", "uniform"], Field(description=(
                     "VQ-VAE only: draw each position's code from its frequency in the training "
                     "codes (fitted) or uniformly (the prior VQ-VAE trains with)"))] = "fitted"):
    """A grid of images decoded from the prior: z ~ N(0, I) for the VAE family, code maps for
    VQ-VAE (default: every run with a prior; others are named and skipped)."""
    # lazy: matplotlib only when the step runs, not when a study loads
    from ..report.plots.latent import decoded_grid, prior_samples

    skipped = []
    for r, model in ctx.trained(runs):
        g = torch.Generator().manual_seed(r.seed)
        if hasattr(model, "stats"):
            fig = prior_samples(model, n, ncols, seed=r.seed, title=f"{r.name}: {n} samples, z ~ N(0, I)")
            how = "codes drawn from the prior N(0, I)"
        elif hasattr(model, "quantizer"):
            probs = (fit_code_prior(model, ctx.splits["train"].x) if code_prior == "fitted"
                     else uniform_code_prior(model))
            how = ("code maps drawn position by position from the codes' frequencies in the training "
                   "images (independent positions, no PixelCNN)" if code_prior == "fitted"
                   else "code maps drawn uniformly from the codebook at every position")
            fig = decoded_grid(model, sample_code_map(model, probs, n, g), ncols,
                               f"{r.name}: {n} samples, {code_prior} code prior")
        else:
            skipped.append(r.name)
            continue
        ctx.save_figure(f"samples-{r.name}", fig, f"{n} images decoded by {r.name} from {how}.")
    if skipped:
        ctx.summary.append(f"samples: no prior to sample for {', '.join(skipped)} (not generative); skipped.")
