"""The generative and clustering references reproduced (SPEC 1.6, 1.7; issue 19). Slow: run with
``pytest -m slow tests/test_reproduction_generative.py`` on a GPU (``train.device = auto``); the
CPU figures at reduced budgets are in the studies' descriptions and the issue.

- Likelihood: pythae's VAE reproduction (784-400-40, Bernoulli decoder, Adam 1e-3, batch 100),
  importance-sampled NLL with 200 samples on binarized MNIST test images: 89.78 nats, within 2.
  aelab trains on grey levels (pythae on a fixed binarized MNIST), so this checks the setup
  rather than asserting an identical training set.
- IDEC: MNIST ACC >= 0.84 (DEC), Fashion-MNIST ACC >= 0.586 and NMI >= 0.60 (DEC-DA), as the
  mean over 3 seeds, each beside k-means on the codes and on the pixels.
- VQ-VAE: reconstruction BCE below the dense VAE's with as many code numbers (7×7 = 49 indices
  against a 49-D latent), codebook perplexity reported.

Measured on the 2-core CPU, one thread, at reduced budgets (issue 19, seed 0, full MNIST):
VAE 784-400-40 after 5 epochs (82 s), k = 200 on all 10,000 binarized test images: NLL 99.24
nats, -ELBO 105.30; after 2 epochs VQ-VAE val BCE 0.0736 per pixel (perplexity 54, 76 of 128
codes used) against 0.116 for the 49-D VAE; IDEC on 10,000 MNIST images (autoencoder 10 epochs,
1,000 IDEC iterations) ACC 0.540 / NMI 0.503, k-means on its codes 0.529 / 0.490, on the pixels
0.506 / 0.489; the same on 10,000 Fashion-MNIST images: IDEC 0.485 / 0.554, k-means on codes
0.481 / 0.537, on pixels 0.477 / 0.512. The full budgets below have not run here.
"""

from __future__ import annotations

import json

import pytest

from aelab.config import build_study, read_study_file
from aelab.runner import run_study

from .conftest import needs_fashion

PYTHAE_NLL, NLL_TOLERANCE = 89.78, 2.0
IDEC_MNIST_ACC = 0.84
IDEC_FASHION = {"acc": 0.586, "nmi": 0.60}


def derived(name: str, models: list[str] | None = None, steps: list[dict] | None = None,
            train: dict | None = None, extra_models: list[dict] | None = None):
    """A built-in study without [quick], keeping only ``models`` (plus ``extra_models``), with
    ``steps`` in place of its own and ``train`` settings over its own."""
    raw, source = read_study_file(name)
    raw.pop("quick", None)
    if models is not None:
        raw["models"] = [m for m in raw["models"] if m["name"] in models]
    raw["models"] += extra_models or []
    if steps is not None:
        raw["steps"] = steps
    raw["train"] = {**raw.get("train", {}), "device": "auto", **(train or {})}
    return build_study(raw, source)


def runs_of(folder) -> dict:
    return {r["name"]: r for r in json.loads((folder / "metrics.json").read_text())["runs"]}


@pytest.mark.slow
def test_vae_likelihood_matches_pythae(tmp_path, full_mnist):
    # pythae trains far longer (with a learning-rate schedule); 300 epochs is aelab's budget.
    study = derived("vae-tour", ["vae"], [{"kind": "likelihood", "k": 200, "n": 10_000}], {"epochs": 300})
    nll = runs_of(run_study(study, out=tmp_path / "run", quiet=True))["vae"]["nll"]
    assert abs(nll - PYTHAE_NLL) <= NLL_TOLERANCE, nll


def _idec(name, tmp_path) -> dict:
    runs = runs_of(run_study(derived(name), out=tmp_path / "run", quiet=True))
    seeds = [r for n, r in runs.items() if n != "raw-pixels"]
    assert len(seeds) == 3
    mean = {k: sum(r[k] for r in seeds) / 3 for k in ("idec_acc", "idec_nmi", "idec_init_acc")}
    # IDEC improves on the k-means that initialises it, which beats k-means on the pixels.
    assert mean["idec_acc"] > mean["idec_init_acc"] > runs["raw-pixels"]["idec_init_acc"]
    return mean


@pytest.mark.slow
def test_idec_on_mnist_reaches_dec(tmp_path, full_mnist):
    assert _idec("deep-clustering", tmp_path)["idec_acc"] >= IDEC_MNIST_ACC


@pytest.mark.slow
@needs_fashion
def test_idec_on_fashion_mnist_reaches_dec_da(tmp_path):
    mean = _idec("deep-clustering-fashion", tmp_path)
    assert mean["idec_acc"] >= IDEC_FASHION["acc"] and mean["idec_nmi"] >= IDEC_FASHION["nmi"]


@pytest.mark.slow
def test_vq_vae_reconstructs_better_than_a_vae_with_as_many_code_numbers(tmp_path, full_mnist):
    vae49 = {"name": "vae49", "model": "vae", "params": {"latent_dim": 49, "hidden": 400}}
    study = derived("vae-tour", ["vq-vae"], [], extra_models=[vae49])
    runs = runs_of(run_study(study, out=tmp_path / "run", quiet=True))
    vq, vae = runs["vq-vae"]["history"][-1], runs["vae49"]["history"][-1]
    # The VAE's recon is BCE summed over the 784 pixels, the VQ-VAE's the per-pixel mean.
    assert vq["val_recon"] < vae["val_recon"] / 784
    assert vq["codebook_perplexity"] > 1
