"""Optimizers: Keras Nadam against a NumPy transcription of Keras's update_step."""

import numpy as np
import pytest
import torch
from torch import nn

from aelab.errors import ConfigError
from aelab.optim import flatten_parameters, make_optimizer


def keras_nadam(grads, lr, b1=0.9, b2=0.999, eps=1e-7, w0=0.0):
    """keras.optimizers.Nadam.update_step (Keras 3 / tf.keras >= 2.11), transcribed."""
    w, m, v, u_product = np.float64(w0), 0.0, 0.0, 1.0
    out = []
    for it, g in enumerate(grads):
        t = it + 1
        u_t = b1 * (1.0 - 0.5 * 0.96**t)
        u_t1 = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        u_product_next = u_product * u_t1
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_t1 * m / (1 - u_product_next) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return np.array(out)


def test_nadam_matches_keras_update_rule():
    grads = [0.5, -1.0, 2.0, 0.1, -0.3, 1e-4, 0.0, 3.0]
    p = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = make_optimizer("nadam", [p], learning_rate=0.01)
    ours = []
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        ours.append(p.item())
    np.testing.assert_allclose(ours, keras_nadam(grads, 0.01), rtol=1e-12)


def test_nadam_equals_torch_nadam_with_keras_schedule():
    torch.manual_seed(0)
    a = nn.Parameter(torch.randn(1000))
    b = nn.Parameter(a.detach().clone())
    ours = make_optimizer("nadam", [a], learning_rate=1e-3)
    ref = torch.optim.NAdam([b], lr=1e-3, eps=1e-7, momentum_decay=1.0)  # 0.96**(t * 1)
    for _ in range(20):
        g = torch.randn(1000)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_flat_parameters_alias_the_layers():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    flat = flatten_parameters(model)
    assert flat.numel() == sum(p.numel() for p in model.parameters())
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)  # values kept
    model(torch.randn(5, 3)).sum().backward()
    assert flat.grad.abs().sum() > 0  # layer gradients land in the flat buffer
    opt = make_optimizer("sgd", [flat], learning_rate=0.1)
    g0 = model[0].weight.grad.clone()
    w0 = model[0].weight.detach().clone()
    opt.step()
    assert torch.allclose(model[0].weight, w0 - 0.1 * g0)  # the step moved the layer's weights


def test_flat_views_keep_channels_last_strides_and_give_the_same_gradients():
    import copy

    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    ref = copy.deepcopy(conv)
    conv.to(memory_format=torch.channels_last)
    flat = flatten_parameters(conv)
    x = torch.rand(4, 3, 10, 10)
    conv(x).square().sum().backward()
    ref(x).square().sum().backward()
    for p, q in zip(conv.parameters(), ref.parameters()):
        assert p.data_ptr() >= flat.data_ptr() and torch.equal(p, q)  # a view of the buffer, same values
        if p.dim() == 4:
            assert p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            assert p.grad.stride() == p.stride()
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5)
    assert torch.equal(torch.sort(flat.grad).values,
                       torch.sort(torch.cat([p.grad.flatten() for p in conv.parameters()])).values)


def test_adadelta_original_and_default_learning_rates():
    p = nn.Parameter(torch.zeros(1))
    assert make_optimizer("adadelta-original", [p]).defaults["lr"] == 1.0
    assert make_optimizer("adadelta", [p]).defaults["lr"] == pytest.approx(1e-3)


def test_unknown_optimizer_lists_known_ones():
    with pytest.raises(ConfigError, match="nadam"):
        make_optimizer("lbfgs2", [nn.Parameter(torch.zeros(1))])
