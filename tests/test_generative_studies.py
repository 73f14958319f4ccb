"""The vae-tour and deep-clustering studies end to end with --quick (SPEC 1.6, 1.7)."""

from __future__ import annotations

import json
import math

from aelab.config import load_study
from aelab.runner import run_study

VAES = ("vae2", "vae", "beta-vae", "conv-vae")


def _metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_vae_tour_quick(tmp_path):
    m = _metrics(run_study(load_study("vae-tour", quick=True), out=tmp_path / "run", quiet=True))
    runs = {r["name"]: r for r in m["runs"]}
    assert set(runs) == {*VAES, "vq-vae"} and all(r["status"] == "completed" for r in runs.values())
    for name in VAES:
        r = runs[name]
        assert r["nll"] <= r["neg_elbo"] and (r["nll_k"], r["nll_data"]) == (10, "binarized (seed 0)")
    assert "nll" not in runs["vq-vae"] and "- not scored (no decoder likelihood): vq-vae" in m["summary"]
    assert all(e["codebook_perplexity"] >= 1 for e in runs["vq-vae"]["history"])
    for r in runs.values():
        assert math.isfinite(r["psnr"]) and -1 <= r["ssim"] <= 1
        assert 0 < r["trustworthiness_pca"] <= 1 and 0 < r["trustworthiness_tsne"] <= 1
    figures = set(m["figures"])
    assert {f"samples-{n}" for n in runs} | {f"interpolation-{n}" for n in runs} <= figures
    assert {f for f in figures if f.startswith("traversal-")} == {f"traversal-{n}" for n in VAES}
    assert {f for f in figures if f.startswith("manifold2d-")} == {"manifold2d-vae2"}  # the 2-D latent
    assert "frequencies in the training images" in m["captions"]["samples-vq-vae"]  # the fitted prior


def test_deep_clustering_quick_aggregates_over_seeds(tmp_path):
    m = _metrics(run_study(load_study("deep-clustering", quick=True), out=tmp_path / "run", quiet=True))
    runs = {r["name"]: r for r in m["runs"]}
    assert set(runs) == {"dec-ae-seed0", "dec-ae-seed1", "dec-ae-seed2", "raw-pixels"}
    for name in ("dec-ae-seed0", "dec-ae-seed1", "dec-ae-seed2"):
        assert runs[name]["idec_iterations"] <= 100  # [quick]
        assert all(0 <= runs[name][f"idec{p}_{s}"] <= 1 for p in ("", "_init") for s in ("acc", "nmi"))
    assert 0.1 <= runs["raw-pixels"]["idec_init_acc"] <= 1  # k-means on the pixels
    (group,) = m["aggregates"]
    assert group["configuration"] == "dec-ae" and group["metrics"]["idec_acc"]["n"] == 3


def test_deep_clustering_fashion_is_the_mnist_study_on_fashion_mnist():
    base, fashion = load_study("deep-clustering"), load_study("deep-clustering-fashion")
    assert (fashion.data.dataset, fashion.data.fallback) == ("fashion-mnist", "")
    assert [(r.name, r.model, r.params) for r in fashion.runs] == [(r.name, r.model, r.params) for r in base.runs]
    assert [s.kind for s in fashion.steps] == [s.kind for s in base.steps]
    assert load_study("deep-clustering-fashion", quick=True).data.limit == 700
