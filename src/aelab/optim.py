"""Optimizers with Keras's defaults, stepping one flat parameter buffer.

``flatten_parameters`` makes every parameter (and its gradient) a view into one contiguous
tensor, so an optimizer step is a handful of vectorised ops on one buffer instead of a Python
loop over layers: on a 2-core CPU that is most of the gap between a naive loop and the compute
bound at small batch sizes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import ConfigError


def flatten_parameters(model: nn.Module) -> nn.Parameter:
    """Re-point each trainable parameter of ``model`` at a slice of one flat buffer.

    Returns the flat parameter, whose ``.grad`` is a flat buffer the layers' ``.grad`` views
    alias. Autograd accumulates into an existing ``.grad`` in place, so zero it with
    ``flat.grad.zero_()`` (never set it to None) between steps. Each view keeps its parameter's
    strides, so channels-last conv weights stay channels-last (oneDNN's fast path on CPU).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    flat = nn.Parameter(torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype,
                                    device=params[0].device))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        dense = p.is_contiguous() or (p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last))
        stride = p.stride() if dense else torch.empty(p.shape, device="meta").stride()
        view = flat.data.as_strided(p.shape, stride, offset)
        view.copy_(p.detach())
        p.data = view
        p.grad = flat.grad.as_strided(p.shape, stride, offset)
        offset += p.numel()
    return flat


def _step_by(p: torch.Tensor, num: torch.Tensor, den: torch.Tensor | None, value) -> None:
    """``p += value * num / den``; ``value`` is a number or, for stacked members, an (M, 1)
    float64 tensor of per-member values (computed in double, like a number, then rounded once;
    the number path is the exact op a single run uses)."""
    if isinstance(value, torch.Tensor):  # in the order of the number path's kernels: bit-equal
        value = value.to(p.dtype)
        p.addcmul_(num, value) if den is None else p.add_(num.mul(value).div_(den))
    elif den is None:
        p.add_(num, alpha=value)
    else:
        p.addcdiv_(num, den, value=value)


# The update rules, on one parameter tensor ``p`` (a flat buffer, or M stacked members' buffers
# as rows, ``lr`` then a number or an (M, 1) tensor) with gradient ``g`` and state ``st``.
# Scalars in ``st`` (step counts) are shared by stacked members, which always step together.


def adam_update(p, g, st, lr, betas=(0.9, 0.999), eps=1e-7) -> None:
    b1, b2 = betas
    if not st:
        st.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
    st["t"] += 1
    t, m, v = st["t"], st["m"], st["v"]
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    _step_by(p, m, v.sqrt().add_(eps), -(lr * math.sqrt(1 - b2**t) / (1 - b1**t)))


def rmsprop_update(p, g, st, lr, rho=0.9, eps=1e-7) -> None:
    if not st:
        st["v"] = torch.zeros_like(p)
    v = st["v"]
    v.mul_(rho).addcmul_(g, g, value=1 - rho)
    _step_by(p, g, v.add(eps).sqrt_(), -lr)


def nadam_update(p, g, st, lr, betas=(0.9, 0.999), eps=1e-7, scratch=None) -> None:
    b1, b2 = betas
    if not st:
        st.update(step=0, u_product=1.0, m=torch.zeros_like(p), v=torch.zeros_like(p))
    # Two scratch buffers, kept out of the state so resume files hold only m and v.
    num, den = scratch if scratch is not None else (torch.empty_like(p), torch.empty_like(p))
    st["step"] += 1
    t = st["step"]
    u_t, u_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
    st["u_product"] *= u_t
    c_m = u_next / (1 - st["u_product"] * u_next)  # weight of the momentum m
    c_g = (1 - u_t) / (1 - st["u_product"])  # weight of the current gradient
    st["m"].lerp_(g, 1 - b1)
    st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
    s2 = math.sqrt(1 - b2**t)  # sqrt(v_hat) + eps == (sqrt(v) + eps * s2) / s2
    torch.sqrt(st["v"], out=den).add_(eps * s2)
    torch.add(st["m"], g, alpha=c_g / c_m, out=num)
    _step_by(p, num, den, -lr * c_m * s2)


def sgd_update(p, g, st, lr, momentum=0.0) -> None:
    """torch.optim.SGD without momentum (Keras's default SGD)."""
    _step_by(p, g, None, -lr)


def adadelta_update(p, g, st, lr, rho=0.95, eps=1e-7) -> None:
    """torch.optim.Adadelta's single-tensor rule (its CPU default)."""
    if not st:
        st.update(step=torch.tensor(0.0), square_avg=torch.zeros_like(p), acc_delta=torch.zeros_like(p))
    st["step"] += 1
    square_avg, acc_delta = st["square_avg"], st["acc_delta"]
    square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)
    std = square_avg.add(eps).sqrt_()
    delta = acc_delta.add(eps).sqrt_().div_(std).mul_(g)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    _step_by(p, delta, None, -lr)


class _KerasOptimizer(torch.optim.Optimizer):
    """A Keras optimizer over its ``update`` rule, one state per parameter."""

    update = staticmethod(adam_update)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            hyper = {k: v for k, v in group.items() if k not in ("params", "lr")}
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, self.state[p], group["lr"], hyper)

    def _update(self, p, g, st, lr, hyper) -> None:
        self.update(p, g, st, lr, **hyper)


class KerasAdam(_KerasOptimizer):
    """Keras's Adam: epsilon is added to sqrt(v) *before* the bias correction,
    ``p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`` (the paper's "epsilon hat"),
    where torch.optim.Adam adds it after (``m_hat / (sqrt(v_hat) + eps)``)."""

    update = staticmethod(adam_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-7):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})


class KerasRMSprop(_KerasOptimizer):
    """Keras's RMSprop (rho 0.9, no momentum): ``v = rho v + (1 - rho) g^2``,
    ``p -= lr * g / sqrt(v + eps)``: epsilon inside the square root, where torch.optim.RMSprop
    adds it outside."""

    update = staticmethod(rmsprop_update)

    def __init__(self, params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-7):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})


class KerasNadam(_KerasOptimizer):
    """``keras.optimizers.Nadam`` (Keras 3 / tf.keras >= 2.11), in five passes over memory.

    u_t = b1 (1 - 0.5 * 0.96**t); m_hat = u_{t+1} m / (1 - prod u_1..u_{t+1}) + (1 - u_t) g /
    (1 - prod u_1..u_t); w -= lr * m_hat / (sqrt(v / (1 - b2**t)) + eps). The bias correction of
    v is folded into the scalars, and the two Nesterov terms into one buffer: the same update as
    torch.optim.NAdam(momentum_decay=1), about 6x faster per step on one CPU thread, which is
    what the optimizer costs at batch 32.
    """

    update = staticmethod(nadam_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-7):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        self._scratch: dict = {}

    def _update(self, p, g, st, lr, hyper) -> None:
        scratch = self._scratch.get(p) or self._scratch.setdefault(p, (torch.empty_like(p), torch.empty_like(p)))
        nadam_update(p, g, st, lr, **hyper, scratch=scratch)


# name -> (torch optimizer class or its name in torch.optim, Keras default keyword arguments,
# default learning rate); UPDATES: the same rule on a tensor, for stacked members (aelab.stacked).
OPTIMIZERS: dict[str, tuple[str | type, dict, float]] = {
    # Checked against a NumPy transcription of Keras's update_step in the tests.
    "nadam": (KerasNadam, {"betas": (0.9, 0.999), "eps": 1e-7}, 1e-3),
    "adam": (KerasAdam, {"betas": (0.9, 0.999), "eps": 1e-7}, 1e-3),
    "rmsprop": (KerasRMSprop, {"rho": 0.9, "eps": 1e-7}, 1e-3),
    "sgd": ("SGD", {"momentum": 0.0}, 1e-2),
    # Today's Keras default (learning rate 0.001) and the original Keras 1/2 default (1.0)
    # that the 2016 Keras blog tour used; with 0.001 Adadelta trains far slower.
    "adadelta": ("Adadelta", {"rho": 0.95, "eps": 1e-7}, 1e-3),
    "adadelta-original": ("Adadelta", {"rho": 0.95, "eps": 1e-7}, 1.0),
}


def make_optimizer(name: str, params, learning_rate: float | None = None) -> torch.optim.Optimizer:
    try:
        cls_name, kwargs, default_lr = OPTIMIZERS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}."
        ) from None
    lr = default_lr if learning_rate is None else learning_rate
    cls = getattr(torch.optim, cls_name) if isinstance(cls_name, str) else cls_name
    return cls(params, lr=lr, **kwargs)


UPDATES = {"nadam": nadam_update, "adam": adam_update, "rmsprop": rmsprop_update, "sgd": sgd_update,
           "adadelta": adadelta_update, "adadelta-original": adadelta_update}
