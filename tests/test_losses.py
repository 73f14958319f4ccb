"""Loss terms against hand-computed values and Keras's documented formulas."""

import math

import pytest
import torch

from aelab import losses
from aelab.errors import ConfigError
from aelab.models import create_model


def test_bce_from_logits_matches_keras_clipped_formula():
    logits = torch.tensor([[2.0, -1.0], [0.5, -3.0]])
    target = torch.tensor([[1.0, 0.0], [0.3, 1.0]])
    p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)  # Keras clips to [eps, 1 - eps]
    keras = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    assert losses.bce(logits, target).item() == pytest.approx(keras.item(), rel=1e-6)


def test_bce_hand_value():
    # one pixel, logit 0 -> p = 0.5 -> -log(0.5)
    assert losses.bce(torch.zeros(1, 1), torch.ones(1, 1)).item() == pytest.approx(math.log(2))


def test_l1_activity_is_keras_sum_per_sample_mean_over_batch():
    codes = torch.tensor([[1.0, -2.0, 3.0], [0.0, 0.5, -0.5]])  # sums |.|: 6 and 1
    assert losses.l1_activity(codes, 1e-6).item() == pytest.approx(1e-6 * (6 + 1) / 2)


def test_sse_and_mse():
    out, target = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert losses.sse(out, target).item() == pytest.approx(4.0)  # 4 pixels per image
    assert losses.mse(out, target).item() == pytest.approx(1.0)


def test_kl_sparsity_zero_at_target_and_positive_elsewhere():
    codes = torch.full((4, 3), 0.05)
    assert losses.kl_sparsity(codes, 0.05, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    rho, rho_hat = 0.05, 0.2
    kl = rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat))
    assert losses.kl_sparsity(torch.full((4, 3), rho_hat), rho, 2.0).item() == pytest.approx(2 * 3 * kl, rel=1e-5)


def test_gaussian_kl_hand_value():
    mean, log_var = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 * sum(mu^2 + var - 1 - log var) = 0.5 * (1 + 0 + 0 + (2 - 1 - log 2))
    expected = 0.5 * (1 + (2 - 1 - math.log(2)))
    assert losses.gaussian_kl(mean, log_var).item() == pytest.approx(expected, rel=1e-6)


def test_model_loss_parts_add_up_with_keras_penalty():
    model = create_model("stacked", activity_l1=1e-3)
    x = torch.rand(8, 1, 28, 28)
    parts = model.loss(x)
    z = model.encode(x)
    assert parts["penalty"].item() == pytest.approx(1e-3 * z.abs().sum().item() / 8, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(parts["recon"].item() + parts["penalty"].item(), rel=1e-6)
    # the reconstruction part is BCE of the sigmoid output the user sees
    p = model(x).clamp(1e-7, 1 - 1e-7)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).mean()
    assert parts["recon"].item() == pytest.approx(bce.item(), rel=1e-4)


def test_unknown_loss_lists_known_ones():
    with pytest.raises(ConfigError, match="bce, mse, sse"):
        losses.reconstruction("hinge")
