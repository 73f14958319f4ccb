"""Latent-space figures: the code arithmetic on numbers, the figures' panels."""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")  # the test process draws to files; the library itself chooses no backend
import matplotlib.pyplot as plt  # noqa: E402

from aelab.models import create_model  # noqa: E402
from aelab.report.plots import latent  # noqa: E402


def test_interpolate_is_linear_with_both_ends():
    za, zb = torch.tensor([[0.0, 1.0], [2.0, 2.0]]), torch.tensor([[1.0, 3.0], [2.0, 0.0]])
    out = latent.interpolate(za, zb, 5)
    assert out.shape == (2, 5, 2)
    torch.testing.assert_close(out[:, 0], za)
    torch.testing.assert_close(out[:, -1], zb)
    torch.testing.assert_close(out[0, 2], torch.tensor([0.5, 2.0]))


def test_traverse_changes_one_dimension_per_row():
    z = torch.tensor([0.1, 0.2, 0.3])
    out = latent.traverse(z, torch.tensor([-1.0, 0.0, 1.0]), [0, 2])
    assert out.shape == (2, 3, 3)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(out[0, :, 1:], z[1:].expand(3, 2))
    torch.testing.assert_close(out[1, :, 2], torch.tensor([-1.0, 0.0, 1.0]))


def _images(axes_grid_fig):
    return sum(bool(ax.images) for ax in axes_grid_fig.axes)


@pytest.fixture(scope="module")
def model():
    return create_model("vae", seed=0, latent_dim=3)


def test_prior_samples(model):
    fig = latent.prior_samples(model, n=20, ncols=10)
    assert _images(fig) == 20
    plt.close(fig)


def test_interpolation_rows(model):
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    fig = latent.interpolation(model, x[:2], x[2:], steps=6)
    assert _images(fig) == 2 * (6 + 2)
    plt.close(fig)


def test_traversal_one_row_per_dimension(model):
    fig = latent.traversal(model, torch.rand(1, 28, 28), values=(-2, 0, 2))
    assert _images(fig) == 3 * 3
    assert fig.axes[0].get_title(loc="left").startswith("z[0]: -2, 0, 2")
    plt.close(fig)


def test_embedding_scatter_title_and_colours():
    pts = np.random.default_rng(0).normal(size=(30, 2))
    fig = latent.embedding_scatter(pts, np.arange(30) % 3, ["a", "b", "$c"], method="t-SNE", trust=0.91234)
    ax = fig.axes[0]
    assert ax.get_title() == "t-SNE of the codes (trustworthiness 0.912)"
    assert ax.get_xlabel() == "t-SNE 1" and len(ax.collections[0].get_offsets()) == 30
    plt.close(fig)
