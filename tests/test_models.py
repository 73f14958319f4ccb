"""Every registered model, the zoo's architectures, build-time shape errors, Keras-exact optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from aelab.errors import ConfigError
from aelab.models import Autoencoder, check_shapes, count_parameters, create_model, list_models
from aelab.optim import make_optimizer
from aelab.runs import load_checkpoint, save_checkpoint

SHAPE = (1, 28, 28)


def _batch(shape=SHAPE, n=4, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- registry-wide


@pytest.mark.parametrize("name", list_models())
def test_shape_and_finite_output(name):
    torch.manual_seed(0)
    model = create_model(name, SHAPE)
    x = _batch()
    out = model(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    z = model.encode(x)
    assert tuple(z.shape[1:]) == model.code_shape
    assert model.decode(z).shape == x.shape
    parts = model.loss(x)
    assert {"loss", "recon", "penalty"} <= set(parts)
    assert all(torch.isfinite(v).all() for v in parts.values())


@pytest.mark.parametrize("name", list_models())
def test_gradient_on_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, SHAPE)
    model.loss(_batch())["loss"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", list_models())
def test_one_step_changes_weights(name):
    torch.manual_seed(0)
    model = create_model(name, SHAPE)
    before = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer("adam", model.parameters())
    model.loss(_batch())["loss"].backward()
    opt.step()
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True)]
    assert all(changed), f"{name}: {changed.count(False)} parameter tensors did not move"


@pytest.mark.parametrize("name", list_models())
def test_checkpoint_roundtrip(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, SHAPE)
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # the reload must not see this change
    loaded = load_checkpoint(path)
    state = loaded.state_dict()
    assert state.keys() == saved.keys()
    for k, v in saved.items():
        assert torch.equal(state[k], v), k
    loaded.eval()
    x = _batch()
    assert loaded(x).shape == x.shape


def test_unknown_model_lists_known_ones():
    with pytest.raises(ConfigError, match="Unknown model 'nope'.*conv-transposed.*vae"):
        create_model("nope")


def test_unknown_loss_and_optimizer_list_known_ones():
    with pytest.raises(ConfigError, match="loss = 'l3' is not allowed: it should be 'bce', 'mse' or 'sse'"):
        create_model("conv", SHAPE, loss="l3")
    with pytest.raises(ConfigError, match="Unknown optimizer 'adamw'.*adadelta-original"):
        make_optimizer("adamw", [nn.Parameter(torch.zeros(1))])


# ---------------------------------------------------------------- the zoo's architectures


@pytest.mark.parametrize(
    "name, n_params, code_shape",
    [
        ("simple", 784 * 32 + 32 + 32 * 784 + 784, (32,)),
        ("sparse-l1", 784 * 32 + 32 + 32 * 784 + 784, (32,)),
        ("deep", 222_384, (32,)),
        ("conv", 4_385, (8, 4, 4)),  # the blog's model.summary(): 4,385 parameters
        ("denoising-conv", 28_353, (32, 7, 7)),
        ("vae", 784 * 256 + 256 + 2 * (256 * 2 + 2) + 2 * 256 + 256 + 256 * 784 + 784, (2,)),
    ],
)
def test_zoo_architectures(name, n_params, code_shape):
    model = create_model(name, SHAPE)
    assert count_parameters(model) == n_params
    assert model.code_shape == code_shape


def test_keras_default_init():
    model = create_model("conv", SHAPE)
    first = model.encoder[0]
    bound = math.sqrt(6 / (1 * 9 + 16 * 9))  # Glorot uniform, fans include the 3×3 receptive field
    assert first.weight.abs().max() <= bound
    assert torch.count_nonzero(first.bias) == 0


def test_conv_transposed_layers():
    model = create_model("conv-transposed", SHAPE)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    widths = [c.out_channels for c in convs]
    assert len(convs) == 3 and widths == sorted(widths, reverse=True)
    kinds = [type(m).__name__ for m in model.decoder if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert kinds == ["ConvTranspose2d", "Conv2d", "ConvTranspose2d", "Conv2d"]
    assert model.loss_name == "sse"


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c_in, c_out, side", [(16, 1, 14), (8, 8, 4), (3, 5, 7)])
def test_up_conv_equals_keras_upsampling_then_same_conv(c_in, c_out, side, channels_last):
    """The fused layer must give UpSampling2D + Conv2D(3, same)'s values and all three gradients."""
    from aelab.models.conv import UpConv2d

    torch.manual_seed(0)
    fused = UpConv2d(c_in, c_out)
    ref = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1))
    ref[1].load_state_dict(fused.state_dict())
    x = torch.randn(3, c_in, side, side)
    if channels_last:
        fused.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = fused(xa), ref(xb)
    assert out.shape == expected.shape == (3, c_out, 2 * side, 2 * side)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(expected)
    out.backward(g)
    expected.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.weight.grad, ref[1].weight.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(fused.bias.grad, ref[1].bias.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", ["conv", "denoising-conv", "conv-transposed", "simple", "deep", "vae"])
@pytest.mark.parametrize("shape", [(3, 28, 28), (1, 20, 20)])
def test_zoo_other_image_sizes(name, shape):
    if name != "conv" and shape[1] == 20:
        shape = (1, 36, 36)
    model = create_model(name, shape)
    x = _batch(shape, n=2)
    assert model(x).shape == x.shape


@pytest.mark.parametrize("name, match", [
    ("conv", "decoder layer 5 \\(the unpadded Conv2d\\)"),
    ("denoising-conv", "encoder layers 2 and 5 \\(MaxPool2d\\)"),
    ("conv-transposed", "encoder layers 2 and 5 \\(MaxPool2d\\)"),
])
def test_bad_image_size_fails_at_build_time_naming_the_layer(name, match):
    with pytest.raises(ConfigError, match=f"cannot map 30×30 .*{match}"):
        create_model(name, (1, 30, 30))


def test_check_shapes_names_the_layer_for_a_bad_channel_count():
    model = Autoencoder(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),  # expects RGB
        nn.Sequential(nn.Conv2d(8, 1, 3, padding=1)),
        (1, 28, 28),
    )
    model.spec = {"model": "hand-made"}
    with pytest.raises(ConfigError, match="encoder layer 0 \\(Conv2d\\) cannot take input of shape \\(1, 28, 28\\)"):
        check_shapes(model)


def test_bad_filters():
    with pytest.raises(ConfigError, match=r"filters = \[16, 8\] is not allowed: list should have at least 3 items"):
        create_model("conv", SHAPE, filters=[16, 8])


def test_sparse_l1_penalty_weight():
    model = create_model("sparse-l1", SHAPE, activity_l1=1e-3)
    x = _batch()
    parts = model.loss(x)
    z = model.encode(x)
    assert parts["penalty"].item() == pytest.approx(1e-3 * z.abs().sum().item() / len(x), rel=1e-5)
    assert parts["loss"].item() == pytest.approx((parts["recon"] + parts["penalty"]).item(), rel=1e-6)


def test_vae_loss_is_summed_reconstruction_plus_kl():
    torch.manual_seed(0)
    model = create_model("vae", SHAPE)
    x = _batch(n=8)
    parts = model.loss(x)
    assert parts["loss"].item() == pytest.approx((parts["recon"] + parts["kl"]).item(), rel=1e-6)
    assert torch.equal(parts["kl"], parts["penalty"]) and parts["kl"] >= 0
    # Reconstruction per image summed over 784 pixels: about 784 * ln 2 for an untrained model.
    assert 400 < parts["recon"].item() < 700
    model.eval()
    assert torch.equal(model.encode(x), model.encode(x))  # the code is the mean, no sampling


# ---------------------------------------------------------------- Keras-exact optimizers


def _keras_adam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7):
    """NumPy transcription of keras.optimizers.Adam.update_step (Keras 3, amsgrad=False)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m += (g - m) * (1 - b1)
        v += (np.square(g) - v) * (1 - b2)
        w = w - (m * alpha) / (np.sqrt(v) + eps)
    return w


def _keras_rmsprop(w, grads, lr, rho=0.9, eps=1e-7):
    """NumPy transcription of keras.optimizers.RMSprop.update_step (not centered, no momentum)."""
    v = np.zeros_like(w)
    for g in grads:
        v = rho * v + (1 - rho) * np.square(g)
        w = w - lr * g / np.sqrt(v + eps)
    return w


@pytest.mark.parametrize("name, reference, lr", [
    ("adam", _keras_adam, 1e-3), ("adam", _keras_adam, 0.1),
    ("rmsprop", _keras_rmsprop, 1e-3), ("rmsprop", _keras_rmsprop, 0.1),
])
def test_optimizer_matches_keras(name, reference, lr):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=50)
    # Tiny gradients too, where the position of epsilon matters.
    grads = [rng.normal(size=50) * scale for scale in (1.0, 1e-6, 1e-3, 1e-8, 0.5)]
    p = nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = make_optimizer(name, [p], lr)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), reference(w0, grads, lr), rtol=1e-10, atol=1e-12)


def test_bad_zoo_params_fail_when_a_study_loads():
    from aelab.config import load_study

    with pytest.raises(ConfigError, match=r"models\[0\]\.params\.filters = \[8, 4\] is not allowed"):
        load_study("conv-lr", overrides=["models.convt.params.filters=[8, 4]"])
    with pytest.raises(ConfigError, match=r"models\[5\]\.params\.latent_dim = 0 is not allowed: it should be greater than or equal to 1"):
        load_study("keras-tour", overrides=["models.vae.params.latent_dim=0"])
    with pytest.raises(ConfigError, match=r"models\[3\]\.params\.loss = 'l2' is not allowed"):
        load_study("keras-tour", overrides=["models.conv.params.loss='l2'"])
