"""2-D embeddings of codes (PCA, t-SNE, UMAP) and how faithfully they keep neighbours.

Everything from scikit-learn but UMAP, which is an optional extra (umap-learn) imported only
when asked for. Trustworthiness (Venna & Kaski 2001) is sklearn's: 1 when every point's
k nearest neighbours in the embedding are also near it in the codes.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.manifold import trustworthiness as sklearn_trustworthiness

METHODS = ("pca", "tsne", "umap")


def _np(a) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return a.reshape(len(a), -1).astype(np.float32)


def embed(codes, method: str = "pca", seed: int = 0, n_components: int = 2) -> np.ndarray:
    """(N, n_components) embedding of (N, ...) codes by ``method``, seeded.

    t-SNE (van der Maaten & Hinton 2008) uses sklearn's defaults (perplexity 30, PCA init);
    UMAP (McInnes et al. 2018) umap-learn's (15 neighbours, min_dist 0.1)."""
    z = _np(codes)
    if method == "pca":
        return PCA(n_components, random_state=seed).fit_transform(z)
    if method == "tsne":
        perplexity = min(30.0, (len(z) - 1) / 3)  # sklearn requires perplexity < N
        return TSNE(n_components, random_state=seed, init="pca", perplexity=perplexity).fit_transform(z)
    if method == "umap":
        try:
            import umap
        except ImportError:  # optional extra
            raise ImportError("UMAP needs the umap-learn package: pip install 'aelab[generative]'.") from None
        return umap.UMAP(n_components=n_components, random_state=seed, n_jobs=1).fit_transform(z)
    raise ValueError(f"Unknown embedding {method!r}; choose one of: {', '.join(METHODS)}.")


def trustworthiness(codes, embedded, n_neighbors: int = 5) -> float:
    """sklearn's trustworthiness of ``embedded`` with respect to ``codes``, in [0, 1]."""
    return float(sklearn_trustworthiness(_np(codes), _np(embedded), n_neighbors=n_neighbors))
