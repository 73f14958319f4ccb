"""clustering: k-means accuracy against a brute-force best matching of clusters to classes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from .conftest import codes


def brute_force_accuracy(y, pred) -> float:
    """The accuracy of the best one-to-one relabelling of clusters, trying every permutation."""
    k = max(y.max(), pred.max()) + 1
    table = np.zeros((k, k), dtype=int)
    np.add.at(table, (pred, y), 1)
    rows = np.arange(k)
    return max(table[rows, list(p)].sum() for p in itertools.permutations(range(k))) / len(y)


def test_brute_force_matching_on_a_hand_made_case():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert brute_force_accuracy(y, np.array([2, 2, 0, 0, 1, 0])) == pytest.approx(5 / 6)


@pytest.mark.parametrize("run", ["raw-pixels", "ks-k8"])
def test_kmeans_scores_match_a_brute_force_matching(every_step, run):
    s = every_step
    test = s.splits["test"]
    x = test.x.flatten(1) if run == "raw-pixels" else codes(s.models[run], test.x)
    # The step's k-means: as many clusters as classes, n_init = 2, seeded by the study.
    pred = KMeans(8, n_init=2, random_state=s.study.seed).fit_predict(x.numpy().astype(np.float32))
    y = test.y.numpy()
    assert s.runs[run]["kmeans_acc"] == pytest.approx(brute_force_accuracy(y, pred))
    assert s.runs[run]["kmeans_nmi"] == pytest.approx(normalized_mutual_info_score(y, pred))
