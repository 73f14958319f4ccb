"""Every registered step runs on a tiny study, does not fail, and adds what it declares."""

from __future__ import annotations

from aelab.registry import STEPS

# Results a step adds only in some cases: a diverged run's epoch; UMAP's trustworthiness (the tiny
# study leaves UMAP out: its first call compiles for 15 s); SSIM (its 11×11 window needs larger
# images than the 8×8 digits; tests/steps/test_quality.py scores 28×28 images).
CONDITIONAL = {"diverged_epoch", "trustworthiness_umap", "ssim"}


def test_the_study_runs_every_registered_step(every_step):
    assert {s.kind for s in every_step.study.steps} == set(STEPS.names())
    assert "failed" not in every_step.console
    assert set(every_step.runs) == {"ks-k4", "ks-k8", "vae", "conv", "gvae", "vq", "raw-pixels"}
    assert all(every_step.runs[n]["status"] in ("completed", "stopped_early")
               for n in every_step.runs if n != "raw-pixels")


def test_every_step_adds_the_results_it_declares(every_step):
    keys = set().union(*every_step.runs.values())
    for entry in STEPS.entries():
        assert set(entry.info.produces) - CONDITIONAL <= keys, entry.name
