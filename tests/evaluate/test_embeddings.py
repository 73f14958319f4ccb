"""Embeddings of codes: PCA against an SVD, t-SNE and UMAP keep clusters, trustworthiness against
a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from aelab.evaluate.embeddings import embed, trustworthiness


def _blobs(n=60, d=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10, size=(3, d))
    y = np.repeat(np.arange(3), n // 3)
    return centers[y] + rng.normal(size=(n, d)), y


def test_pca_is_the_projection_on_the_top_singular_vectors():
    z, _ = _blobs()
    out = embed(z, "pca")
    c = z - z.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    ref = c @ vt[:2].T
    np.testing.assert_allclose(np.abs(out), np.abs(ref), rtol=1e-3, atol=1e-3)  # up to sign


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_nonlinear_embeddings_keep_clusters_and_are_seeded(method):
    z, y = _blobs()
    a, b = embed(z, method, seed=1), embed(z, method, seed=1)
    assert a.shape == (60, 2)
    np.testing.assert_allclose(a, b)
    within = np.mean([np.linalg.norm(a[y == k] - a[y == k].mean(0), axis=1).mean() for k in range(3)])
    between = np.linalg.norm(a[y == 0].mean(0) - a[y == 1].mean(0))
    assert between > 3 * within
    assert trustworthiness(z, a) > 0.8


def test_trustworthiness_of_an_exact_copy_and_of_a_shuffle():
    z, _ = _blobs()
    assert trustworthiness(z, z) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert trustworthiness(z, rng.permutation(z)) < 0.7


def test_unknown_method():
    with pytest.raises(ValueError, match="Unknown embedding 'mds'; choose one of: pca, tsne, umap"):
        embed(np.zeros((5, 2)), "mds")
