"""One tiny study that runs every registered step (8x8 digits, two epochs, small models), shared
by the step tests, and what they need to recompute its numbers independently."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

# Every step kind with a small budget; the models are chosen so that each step's default run
# selection finds something: k-sparse runs (accuracy_vs_k), a conv model trained with input noise
# (denoising, code_images), a VAE (latent_space, manifold), a Gaussian-decoder β-VAE (likelihood on
# grey levels, traversal) and a VQ-VAE (samples from a code prior). Digits 8 and 9 stay out of
# training (novelty).
STUDY = """
name = "every-step"
seed = 0
[data]
dataset = "digits"
classes = [0, 1, 2, 3, 4, 5, 6, 7]
split = [4, 1, 1]
[train]
epochs = 2
batch_size = 64
[[models]]
name = "ks"
model = "k-sparse"
params = { hidden = [32], k = [4, 8] }
[[models]]
name = "vae"
model = "vae"
params = { latent_dim = 2, hidden = 16 }
[[models]]
name = "conv"
model = "conv-transposed"
params = { filters = [4, 4, 4], loss = "bce" }
train = { input_noise = 0.3 }
[[models]]
name = "gvae"
model = "beta-vae"
params = { latent_dim = 3, hidden = 16, beta = 2.0, decoder = "gaussian" }
[[models]]
name = "vq"
model = "vq-vae"
params = { codebook_size = 8, code_dim = 2, filters = [4, 4] }
[[steps]]
kind = "loss_curves"
[[steps]]
kind = "reconstructions"
n = 3
[[steps]]
kind = "denoising"
n = 3
[[steps]]
kind = "code_images"
n = 3
[[steps]]
kind = "latent_space"
n = 3
[[steps]]
kind = "code_activation"
[[steps]]
kind = "sparsity"
[[steps]]
kind = "filters"
n = 8
[[steps]]
kind = "linear_probe"
Cs = [0.01, 1.0]
max_iter = 50
[[steps]]
kind = "finetune"
epochs = 1
[[steps]]
kind = "clustering"
n_init = 2
[[steps]]
kind = "accuracy_vs_k"
[[steps]]
kind = "novelty"
[[steps]]
kind = "likelihood"
k = 20
n = 100
[[steps]]
kind = "samples"
n = 8
ncols = 4
[[steps]]
kind = "interpolation"
pairs = 2
steps = 4
[[steps]]
kind = "traversal"
max_dims = 3
[[steps]]
kind = "manifold"
n = 3
[[steps]]
kind = "embedding"
methods = ["pca", "tsne"]
n = 200
[[steps]]
kind = "image_quality"
[[steps]]
kind = "deep_clustering"
data = "test"
max_iter = 30
update_interval = 10
[[steps]]
kind = "comparison"
[[steps]]
kind = "run_table"
[[steps]]
kind = "lr_verdicts"
[[steps]]
kind = "observations"
"""


@pytest.fixture(scope="session")
def every_step(tmp_path_factory):
    """The finished study: its metrics.json (``runs`` by name, raw-pixels included), figures,
    console text, the splits the steps saw and the trained models from the checkpoints."""
    from aelab.config import load_study
    from aelab.datasets import prepare
    from aelab.runner import run_study
    from aelab.runs import load_checkpoint

    root = tmp_path_factory.mktemp("every-step")
    (root / "study.toml").write_text(STUDY)
    study = load_study(str(root / "study.toml"))
    console = Console(record=True, file=io.StringIO(), width=160)
    folder = run_study(study, out=root / "run", console=console)
    metrics = json.loads((folder / "metrics.json").read_text())
    splits, _ = prepare(study.data, study.seed)  # the same seeded split the runner made
    models = {p.stem: load_checkpoint(p) for p in (folder / "checkpoints").glob("*.safetensors")}
    for m in models.values():
        m.eval()
    return SimpleNamespace(study=study, folder=folder, metrics=metrics, console=console.export_text(),
                           runs={e["name"]: e for e in metrics["runs"]}, splits=splits, models=models,
                           figures=set(metrics["figures"]))


@torch.inference_mode()
def codes(model, x: torch.Tensor) -> torch.Tensor:
    """(N, D) codes in eval mode, computed here rather than by aelab.evaluate."""
    model.eval()
    return model.encode(x).flatten(1)
