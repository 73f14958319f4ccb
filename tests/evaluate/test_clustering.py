"""Deep clustering: DEC's formulas against NumPy, Hungarian accuracy against brute force, IDEC
on separable blobs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from aelab.evaluate.clustering import cluster_scores, idec, soft_assign, target_distribution


def _brute_force_acc(y, p, k):
    return max(np.mean(np.array(perm)[p] == y) for perm in itertools.permutations(range(k)))


@pytest.mark.parametrize("seed", range(5))
def test_cluster_acc_is_the_best_permutation(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 60)
    p = np.where(rng.random(60) < 0.6, (y + 2) % 5, rng.integers(0, 5, 60))
    scores = cluster_scores(y, p)
    assert scores["acc"] == pytest.approx(_brute_force_acc(y, p, 5))
    relabelled = cluster_scores(y, (y + 3) % 5)
    assert relabelled == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}


def test_soft_assignment_and_target_distribution_follow_dec():
    rng = np.random.default_rng(0)
    z, mu = rng.normal(size=(7, 3)), rng.normal(size=(4, 3))
    d2 = ((z[:, None] - mu[None]) ** 2).sum(-1)
    q = 1 / (1 + d2)
    q /= q.sum(1, keepdims=True)
    w = q**2 / q.sum(0)
    p = w / w.sum(1, keepdims=True)
    q_t = soft_assign(torch.tensor(z), torch.tensor(mu))
    np.testing.assert_allclose(q_t.numpy(), q, rtol=1e-10)
    np.testing.assert_allclose(target_distribution(q_t).numpy(), p, rtol=1e-10)
    # alpha = 2: (1 + d²/2)^(-3/2)
    q2 = (1 + d2 / 2) ** -1.5
    np.testing.assert_allclose(soft_assign(torch.tensor(z), torch.tensor(mu), 2.0).numpy(),
                               q2 / q2.sum(1, keepdims=True), rtol=1e-10)


def test_idec_finds_separable_clusters_and_stops_when_labels_settle():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 12))
    y = np.repeat(np.arange(3), 100)
    x = torch.tensor(centres[y] + rng.normal(size=(300, 12)), dtype=torch.float32)
    torch.manual_seed(0)
    encoder, decoder = nn.Linear(12, 3), nn.Linear(3, 12)
    before = encoder.weight.detach().clone()
    labels, history = idec(encoder, decoder, x, 3, update_interval=10, batch_size=64, max_iter=500, y=y)
    assert cluster_scores(y, labels)["acc"] == 1.0
    assert history[-1]["changed"] < 0.001 and len(history) < 50  # stopped by tol, not max_iter
    assert {"iteration", "changed", "loss", "acc", "nmi", "ari"} <= history[-1].keys()
    assert not torch.equal(before, encoder.weight)  # the encoder was fine-tuned
