"""The deep-clustering step (SPEC 1.7): IDEC fine-tuned from an autoencoder's encoder, beside
k-means on the same codes and on the pixels."""

from __future__ import annotations

import copy
from typing import Annotated, Literal

import torch
from pydantic import Field
from sklearn.cluster import KMeans
from torch import nn

from ..evaluate.clustering import cluster_scores, idec
from ._base import Runs, eval_split, raw_pixels, register_step, summary_line

SCORES = ("acc", "nmi", "ari")


def clustered_data(ctx, data: str):
    """The images and labels clustered: the evaluation split, or every split together (DEC and
    IDEC cluster all 70,000 MNIST images: clustering is unsupervised)."""
    parts = [eval_split(ctx)] if data == "test" else list(ctx.splits.values())
    return torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]), parts[0].class_names


class Encode(nn.Module):
    """``model.encode`` as a module holding all of the model's parameters, so IDEC tunes the
    codes the other steps see (k-sparse selects its units in ``encode``, after its encoder)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


@register_step("deep_clustering", needs_labels=True, produces=(
    *(f"idec_{s}" for s in SCORES), *(f"idec_init_{s}" for s in SCORES), "idec_iterations"))
def step_deep_clustering(ctx, runs: Runs = None,
                         data: Annotated[Literal["test", "all"], Field(description=(
                             "images clustered: the test split, or all splits together (the "
                             "papers' setting)"))] = "all",
                         gamma: Annotated[float, Field(ge=0, le=100, description=(
                             "weight γ of the clustering loss KL(P‖Q) beside the reconstruction"))] = 0.1,
                         update_interval: Annotated[int, Field(ge=1, le=100_000, description=(
                             "iterations between updates of the target distribution"))] = 140,
                         tol: Annotated[float, Field(ge=0, le=1, description=(
                             "stop when fewer labels than this fraction change between updates"))] = 0.001,
                         max_iter: Annotated[int, Field(ge=1, le=10_000_000, description=(
                             "most fine-tuning iterations (batches)"))] = 20_000,
                         batch_size: Annotated[int, Field(ge=1, le=100_000, description="images per batch")] = 256,
                         learning_rate: Annotated[float, Field(gt=0, le=10, description="Adam step size")] = 1e-3,
                         baseline: Annotated[bool, Field(description="also k-means on the pixels")] = True):
    """IDEC (Guo et al. 2017) from each run's encoder (a copy; the run keeps its model): k-means
    with 20 restarts on the codes places the centres, then encoder, decoder and centres are
    fine-tuned. Records ``idec_acc/nmi/ari`` (Hungarian ACC, NMI, ARI), ``idec_init_acc/nmi/ari``
    (that k-means on the codes; on the pixels for the raw-pixel baseline) and ``idec_iterations``."""
    x, y, names = clustered_data(ctx, data)
    k = len(names)
    lines = [f"Deep clustering of {len(x):,} images into {k} clusters (ACC, NMI, ARI; k-means: IDEC's "
             "initialisation, 20 restarts):"]
    if baseline:
        pred = KMeans(k, n_init=20, random_state=ctx.study.seed).fit_predict(x.flatten(1).numpy())
        scores = cluster_scores(y.numpy(), pred)
        raw_pixels(ctx).update({f"idec_init_{s}": v for s, v in scores.items()})
        lines.append(summary_line("raw-pixels, k-means", scores))
    for r, model in ctx.trained(runs):
        tuned = copy.deepcopy(model).eval()  # the codes the other steps see (k-sparse keeps alpha·k)
        device = next(tuned.parameters()).device
        # The decoder, a plain function, adds no parameters: Encode holds them all.
        labels, history = idec(Encode(tuned), tuned.decode, x.to(device), k, gamma=gamma,
                               update_interval=update_interval, tol=tol, max_iter=max_iter,
                               batch_size=batch_size, learning_rate=learning_rate, seed=r.seed, y=y.numpy())
        init, final = history[0], cluster_scores(y.numpy(), labels)
        last = history[-1]
        # idec stops at a target update once fewer than tol of the labels changed, else at max_iter.
        ran = last["iteration"] if last["iteration"] > 0 and last["changed"] < tol else max_iter
        r.metrics.update({f"idec_init_{s}": init[s] for s in SCORES})
        r.metrics.update({f"idec_{s}": final[s] for s in SCORES}, idec_iterations=ran)
        lines.append(summary_line(f"{r.name}, k-means on codes", {s: init[s] for s in SCORES}))
        lines.append(summary_line(f"{r.name}, IDEC", {**final, "iterations": ran}))
    ctx.summary.extend(lines)
