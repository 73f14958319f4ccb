"""Deep clustering: IDEC (Guo et al. 2017, "Improved Deep Embedded Clustering with Local
Structure Preservation"), i.e. DEC's soft assignments and target distribution (Xie et al. 2016)
with the reconstruction loss kept so the codes keep the data's local structure.

Scores: Hungarian accuracy (``evaluate.cluster_accuracy``), NMI and ARI from scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .codes import cluster_accuracy


def cluster_scores(y_true, y_pred) -> dict[str, float]:
    """``acc`` (best one-to-one matching of clusters to classes), ``nmi`` and ``ari``."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    return {"acc": cluster_accuracy(y, p), "nmi": float(normalized_mutual_info_score(y, p)),
            "ari": float(adjusted_rand_score(y, p))}


def soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """DEC's q_ij ∝ (1 + |z_i - μ_j|² / α)^(-(α+1)/2): a Student's t kernel, rows sum to 1."""
    q = (1 + torch.cdist(z, centres).square() / alpha).pow(-(alpha + 1) / 2)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), f_j = Σ_i q_ij: sharpens confident
    assignments and divides by cluster size so large clusters do not absorb the rest."""
    w = q.square() / q.sum(0)
    return w / w.sum(1, keepdim=True)


@torch.no_grad()
def _codes(encoder: Callable, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """(N, D) codes of ``x``, flattened (a conv encoder's maps too)."""
    return torch.cat([encoder(x[i : i + batch]).flatten(1) for i in range(0, len(x), batch)])


def _params(*parts) -> list[torch.nn.Parameter]:
    return [p for m in parts if isinstance(m, torch.nn.Module) for p in m.parameters() if p.requires_grad]


def idec(encoder: Callable, decoder: Callable, x: torch.Tensor, n_clusters: int, *, gamma: float = 0.1,
         update_interval: int = 140, tol: float = 0.001, max_iter: int = 20_000, batch_size: int = 256,
         learning_rate: float = 1e-3, seed: int = 0, y=None) -> tuple[np.ndarray, list[dict]]:
    """Fine-tune ``encoder`` and ``decoder`` (modules, trained in place) with IDEC on images ``x``.

    k-means (20 restarts) on the codes places the centres; then Adam minimises, per batch,
    the mean squared reconstruction error + γ · KL(P‖Q) (Keras ``kld``: summed over clusters,
    averaged over the batch), with the target P recomputed every ``update_interval`` iterations
    on all of ``x``. It stops when fewer than ``tol`` of the labels changed between two updates
    (the paper's defaults: γ 0.1, T 140, tol 0.1 %, batch 256). ``decoder`` maps codes to
    reconstructions in the range of ``x`` (e.g. an autoencoder's ``decode``).

    Returns the labels of the last target update and one history row per target update (iteration, fraction of
    labels changed, loss; with ``y``, the ACC/NMI/ARI of the labels at that point).
    """
    g = torch.Generator().manual_seed(seed)
    z = _codes(encoder, x)
    km = KMeans(n_clusters, n_init=20, random_state=seed).fit(z.cpu().numpy())
    centres = torch.nn.Parameter(torch.as_tensor(km.cluster_centers_, dtype=z.dtype, device=z.device))
    opt = torch.optim.Adam([*_params(encoder, decoder), centres], lr=learning_rate)
    last, history, loss = km.labels_, [], float("nan")
    order = torch.randperm(len(x), generator=g).to(x.device)
    for it in range(max_iter):
        if it % update_interval == 0:
            with torch.no_grad():
                q = soft_assign(_codes(encoder, x), centres)
            p, labels = target_distribution(q), q.argmax(1).cpu().numpy()
            changed = float(np.mean(labels != last))
            history.append({"iteration": it, "changed": changed, "loss": loss,
                            **(cluster_scores(y, labels) if y is not None else {})})
            last = labels
            if it > 0 and changed < tol:
                break
        idx = order[(it * batch_size) % len(x):][:batch_size]
        code = encoder(x[idx])
        kl = F.kl_div(soft_assign(code.flatten(1), centres).log(), p[idx], reduction="batchmean")
        total = F.mse_loss(decoder(code), x[idx]) + gamma * kl
        opt.zero_grad()
        total.backward()
        opt.step()
        loss = total.item()
    return last, history
