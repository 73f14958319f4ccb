"""embedding, manifold, traversal, interpolation: trustworthiness against scikit-learn's on maps
made here, and each figure drawn for the runs the step picks."""

from __future__ import annotations

import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness

from .conftest import codes


@pytest.mark.parametrize("run", ["ks-k4", "vq"])
def test_trustworthiness_matches_scikit_learn(every_step, run):
    s = every_step
    test = s.splits["test"]
    # The step's sample: 200 of the 240 test images, drawn with the study's seed, in order.
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(s.study.seed))[:200].sort().values
    z = codes(s.models[run], test.x[pick]).numpy()
    pca = PCA(2, random_state=s.study.seed).fit_transform(z)
    assert s.runs[run]["trustworthiness_pca"] == pytest.approx(trustworthiness(z, pca, n_neighbors=5), abs=1e-6)
    tsne = TSNE(2, random_state=s.study.seed, init="pca", perplexity=30.0).fit_transform(z)
    assert s.runs[run]["trustworthiness_tsne"] == pytest.approx(trustworthiness(z, tsne, n_neighbors=5), abs=0.02)


def test_latent_figures_go_to_the_runs_they_fit(every_step):
    f = every_step.figures
    trained = ("ks-k4", "ks-k8", "vae", "conv", "gvae", "vq")
    assert {f"interpolation-{r}" for r in trained} <= f
    assert {x for x in f if x.startswith("traversal-")} == {"traversal-vae", "traversal-gvae"}
    assert {x for x in f if x.startswith("manifold2d-")} == {"manifold2d-vae"}  # the only 2-D latent
    assert {f"embedding-{m}-{r}" for m in ("pca", "tsne") for r in trained} <= f


def test_manifold_refuses_a_named_run_without_a_2d_latent(tmp_path):
    from aelab.config import load_study
    from aelab.errors import ConfigError

    (tmp_path / "s.toml").write_text("""
name = "m"
[data]
dataset = "digits"
[[models]]
name = "big"
model = "vae"
params = { latent_dim = 3 }
[[steps]]
kind = "manifold"
runs = ["big"]
""")
    with pytest.raises(ConfigError, match=r"steps\[0\]\.runs: run big \(vae\) has no 2-D latent"):
        load_study(str(tmp_path / "s.toml"))
