"""deep_clustering: the k-means beside IDEC scored against a brute-force best matching and
scikit-learn's NMI/ARI, and IDEC fine-tuning copies, never changes, the runs' models."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from aelab.registry import STEPS

from .conftest import codes
from .test_clustering import brute_force_accuracy


@pytest.mark.parametrize("run", ["raw-pixels", "ks-k4"])
def test_kmeans_beside_idec_matches_a_brute_force_matching(every_step, run):
    s = every_step
    test = s.splits["test"]
    # IDEC's initialisation: 20 restarts, seeded by the run's seed (the study's, for the pixels).
    x = test.x.flatten(1) if run == "raw-pixels" else codes(s.models[run], test.x)
    pred = KMeans(8, n_init=20, random_state=0).fit_predict(x.numpy())
    y = test.y.numpy()
    entry = s.runs[run]
    assert entry["idec_init_acc"] == pytest.approx(brute_force_accuracy(y, pred))
    assert entry["idec_init_nmi"] == pytest.approx(normalized_mutual_info_score(y, pred))
    assert entry["idec_init_ari"] == pytest.approx(adjusted_rand_score(y, pred))


def test_idec_scores_every_trained_run(every_step):
    for run in ("ks-k4", "ks-k8", "vae", "conv", "gvae", "vq"):
        e = every_step.runs[run]
        assert 1 / 8 <= e["idec_acc"] <= 1 and -1 <= e["idec_ari"] <= 1
        # max_iter 30, target updates every 10: it ran 30 iterations or stopped at an update.
        assert e["idec_iterations"] in (10, 20, 30)
    assert "idec_acc" not in every_step.runs["raw-pixels"]


def test_idec_fine_tunes_a_copy_and_leaves_the_run_its_model(every_step):
    model = copy.deepcopy(every_step.models["vae"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    test = every_step.splits["test"]
    record = SimpleNamespace(name="vae", seed=0, metrics={})
    ctx = SimpleNamespace(splits={"test": test}, study=SimpleNamespace(seed=0), summary=[], baselines=[],
                          trained=lambda runs: [(record, model)])
    STEPS.get("deep_clustering").fn(ctx, data="test", max_iter=5, update_interval=5, baseline=False)
    assert record.metrics["idec_iterations"] == 5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
