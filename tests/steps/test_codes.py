"""code_activation, sparsity and filters, recomputed from the codes with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import codes


@pytest.mark.parametrize("run", ["ks-k4", "ks-k8", "vae", "conv"])
def test_sparsity_and_mean_activation_match_numpy(every_step, run):
    z = codes(every_step.models[run], every_step.splits["test"].x).numpy().astype(np.float64)
    active = np.abs(z) > 1e-2  # the step's default threshold
    e = every_step.runs[run]
    assert e["mean_code_activation"] == pytest.approx(z.mean())
    assert e["mean_activation"] == pytest.approx(z.mean(), rel=1e-6)
    assert e["active_fraction"] == pytest.approx(active.mean())
    assert e["code_size"] == z.shape[1]
    assert e["dead_units"] == int((~active.any(0)).sum())
    assert e["dead_fraction"] == pytest.approx(e["dead_units"] / z.shape[1])


def test_k_sparse_codes_keep_at_most_k_units(every_step):
    for k in (4, 8):  # alpha = 1: evaluation keeps k of the 32 units per sample
        assert every_step.runs[f"ks-k{k}"]["active_fraction"] <= k / 32


def test_filters_are_drawn_for_every_evaluated_run(every_step):
    assert {f"filters-{r}" for r in ("ks-k4", "ks-k8", "vae", "conv")} <= every_step.figures
