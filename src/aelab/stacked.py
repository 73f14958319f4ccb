"""Vectorized trials: runs of one architecture trained together as one stacked model.

``fit_stacked(models, data, configs)`` trains M models that share their layers' shapes, the data,
the batch size and the epoch budget in one loop: each step gathers every member's batch
(M, B, ...), runs ``torch.func.vmap`` over ``functional_call`` of the shared module with the
members' parameters stacked as rows of one (M, P) buffer, back-propagates the sum of the
members' losses (each member's gradient is its own: the sum's derivative for one member does not
depend on the others, even a NaN one) and steps a Keras optimizer on the whole buffer with
per-member learning rates.

Per member, everything is as if it ran alone through :func:`aelab.train.fit`: its model and
initialisation, its shuffle and noise generators (seeded from its own seed; noise and VAE draws
are taken from them outside vmap, in fit's order), its optimizer state (a member's resume state
holds it in the single-run format, so a group can resume one member alone and vice versa), its
callbacks (early stopping with restore-best, divergence, k schedule, the caller's: each sees a
``FitState`` of its own), its validation (the member's own module, synced after each epoch) and
its history. A member that stops leaves the stack at the end of that epoch.

Tolerance: a member's per-epoch losses agree with its run alone to 1e-5 (batched matrix products
sum in another order than single ones; the tests check it for every model family).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .callbacks import Callback, FitState, History
from .optim import OPTIMIZERS, UPDATES, make_optimizer
from .train import (
    TrainConfig,
    add_noise,
    end_epoch,
    end_fit,
    make_callbacks,
    reconstruction_step,
    reset_peak_rss,
    resolve_device,
    restore,
    start_epoch,
)

__all__ = ["fit_stacked", "stack_key"]


def stack_key(config: TrainConfig) -> tuple:
    """The training settings members of one stack share (the rest may differ per member:
    seed, learning rate, input noise, early stopping, the model's regulariser settings)."""
    return (config.epochs, config.batch_size, config.optimizer, resolve_device(config.device).type,
            config.precision, config.eval_batch_size)


class _Call(nn.Module):
    """``model.loss`` as a module call, for ``functional_call``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, target, eps=None):
        return self.model.loss(x, target, **({} if eps is None else {"eps": eps}))


@dataclass
class _Member:
    model: nn.Module
    config: TrainConfig
    state: FitState
    param: nn.Parameter  # a flat stand-in: its optimizer holds the member's state in fit's format
    index: int  # in the caller's list


@dataclass
class _Stack:
    """The active members' parameters as rows of one (M, P) buffer, with their optimizer state."""

    members: list[_Member]
    names: list[str]
    shapes: list[torch.Size]
    flat: torch.Tensor = None
    grad: torch.Tensor = None
    params: dict = field(default_factory=dict)
    opt_state: dict = field(default_factory=dict)
    scratch: tuple = ()
    lr: object = None

    @classmethod
    def build(cls, members: list[_Member]) -> _Stack:
        first = members[0].model
        names = [n for n, p in first.named_parameters() if p.requires_grad]
        stack = cls(members, names, [p.shape for n, p in first.named_parameters() if p.requires_grad])
        rows = [torch.cat([dict(m.model.named_parameters())[n].detach().reshape(-1) for n in names])
                for m in members]
        stack._point(torch.stack(rows))
        stack.opt_state = _stack_opt_states([m.state.optimizer.state.get(m.param, {}) for m in members])
        stack._set_lr()
        return stack

    def _point(self, flat: torch.Tensor) -> None:
        """Make each stacked parameter (M, *shape) a view into ``flat`` and its grad into ``grad``."""
        self.flat, self.grad = flat.contiguous(), torch.zeros_like(flat)
        self.scratch = (torch.empty_like(self.flat), torch.empty_like(self.flat))
        m, total, offset = self.flat.shape[0], self.flat.shape[1], 0
        for name, shape in zip(self.names, self.shapes):
            size = shape.numel()
            stride = (total, *torch.empty(shape, device="meta").stride())
            p = nn.Parameter(torch.empty(0, device=self.flat.device))
            p.data = self.flat.as_strided((m, *shape), stride, offset)
            p.grad = self.grad.as_strided((m, *shape), stride, offset)
            self.params["model." + name] = p  # as _Call names them
            offset += size

    def _set_lr(self) -> None:
        rates = [m.state.optimizer.param_groups[0]["lr"] for m in self.members]
        same = all(r == rates[0] for r in rates)  # a float: the exact op a single run uses
        self.lr = rates[0] if same else torch.tensor(rates, dtype=torch.float64,
                                                     device=self.flat.device).unsqueeze(1)

    def step(self) -> None:
        cfg = self.members[0].config
        kwargs = dict(OPTIMIZERS[cfg.optimizer][1])
        if cfg.optimizer == "nadam":
            kwargs["scratch"] = self.scratch
        UPDATES[cfg.optimizer](self.flat, self.grad, self.opt_state, self.lr, **kwargs)

    def sync(self, j: int) -> None:
        """Member j's module and optimizer state from its row (for validation and callbacks)."""
        mem, offset = self.members[j], 0
        own = dict(mem.model.named_parameters())
        with torch.no_grad():
            for name, shape in zip(self.names, self.shapes):
                own[name].copy_(self.flat[j, offset: offset + shape.numel()].view(shape))
                offset += shape.numel()
        mem.state.optimizer.state[mem.param] = {
            k: v[j].clone() if _per_member(v, self.flat) else copy.copy(v) for k, v in self.opt_state.items()}

    def keep(self, rows: list[int]) -> None:
        """Only ``rows`` stay; the others have left the stack."""
        index = torch.tensor(rows, device=self.flat.device)
        self.members = [self.members[j] for j in rows]
        self.opt_state = {k: v[index] if _per_member(v, self.flat) else v for k, v in self.opt_state.items()}
        self._point(self.flat[index])
        self._set_lr()


def _per_member(v, flat: torch.Tensor) -> bool:
    return isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape == flat.shape


def _stack_opt_states(states: list[dict]) -> dict:
    """Single-run optimizer states (one flat buffer each) as one state with (M, P) buffers;
    the step counts are shared, as members always step together."""
    if not states[0]:
        return {}
    out = {}
    for k, v in states[0].items():
        if isinstance(v, torch.Tensor) and v.dim() == 1:
            out[k] = torch.stack([s[k] for s in states])
        else:
            out[k] = copy.copy(v)
    return out


def _check(models, configs) -> None:
    keys = {stack_key(c) for c in configs}
    shapes = {tuple((n, tuple(p.shape)) for n, p in m.named_parameters()) for m in models}
    kinds = {type(m) for m in models}
    if len(keys) > 1 or len(shapes) > 1 or len(kinds) > 1:
        raise ValueError("stacked members must share the model's class and shapes, epochs, batch "
                         "size, optimizer, device, precision and evaluation batch size")
    if configs[0].precision != "fp32":
        raise ValueError("stacked members train in fp32 (bf16 runs train alone)")


def _members(models, configs, callbacks, resumes, device) -> list[_Member]:
    out = []
    for i, (model, cfg) in enumerate(zip(models, configs)):
        model.to(device).train()
        gens = {"shuffle": torch.Generator(device="cpu").manual_seed(cfg.seed),
                "noise": torch.Generator(device=device).manual_seed(cfg.seed + 1)}
        param = nn.Parameter(torch.zeros(sum(p.numel() for p in model.parameters() if p.requires_grad),
                                         device=device))
        opt = make_optimizer(cfg.optimizer, [param], cfg.learning_rate)
        cbs = make_callbacks(model, cfg, callbacks[i] if callbacks else ())
        state = FitState(model, opt, cfg, History(), gens, epoch=0, epochs=cfg.epochs, callbacks=cbs)
        if resumes and resumes[i] is not None:
            restore(state, resumes[i])
        out.append(_Member(model, cfg, state, param, i))
    return out


def fit_stacked(models: Sequence[nn.Module], data, configs: Sequence[TrainConfig],
                callbacks: Sequence[Sequence[Callback]] | None = None,
                resumes: Sequence | None = None) -> list[History]:
    """Train ``models`` as one stack; returns each one's History, as ``fit`` would have.

    ``configs[i]``, ``callbacks[i]`` and ``resumes[i]`` are member i's (``resumes``: ResumeStates
    of one epoch, or None). Members must share the model's class and parameter shapes and
    :func:`stack_key`; the model's ``member_settings`` (e.g. k-sparse's k) may differ.
    """
    _check(models, configs)
    device = resolve_device(configs[0].device)
    members = _members(models, configs, callbacks, resumes, device)
    if len({m.state.epoch for m in members}) > 1:
        raise ValueError("stacked members resume from the same epoch")
    x_train = data["train"].x.to(device) if hasattr(data["train"], "x") else data["train"].to(device)
    active = [m for m in members if not m.state.should_stop]
    reset_peak_rss()
    t_start = time.perf_counter() - max(m.state.history.seconds for m in members)
    for m in members:
        for cb in m.state.callbacks:
            cb.on_fit_start(m.state)
    done = {m.index: end_fit(m.state, device) for m in members if m.state.should_stop}
    stack = _Stack.build(active) if active else None
    run = _vmapped_loss(models[0]) if active else None
    for epoch in range(members[0].state.epoch + 1, configs[0].epochs + 1):
        if not active:
            break
        with warnings.catch_warnings():
            # Each parameter's grad is a strided view into the (M, P) gradient buffer, as the
            # parameter is into the weights: PyTorch warns such views are not dense, and still
            # accumulates into them in place (which the optimizer's one flat step relies on).
            warnings.filterwarnings("ignore", message="grad and param do not obey")
            _epoch(stack, run, x_train, data.get("val"), epoch, t_start)
        stay = [j for j, m in enumerate(stack.members) if not m.state.should_stop]
        done.update({m.index: end_fit(m.state, device) for m in stack.members if m.state.should_stop})
        active = [stack.members[j] for j in stay]
        if active and len(stay) < len(stack.members):
            stack.keep(stay)
    done.update({m.index: end_fit(m.state, device) for m in active})
    return [done[i] for i in range(len(members))]


def _vmapped_loss(template: nn.Module):
    """vmap over members of ``template.loss`` with each member's parameters and settings."""
    from torch.func import functional_call, vmap

    base = copy.deepcopy(template).to("meta")
    call = _Call(base)
    floats = {k: getattr(base, k) for k in base.member_settings}

    def member_loss(params, settings, inp, target, eps):
        for k, v in settings.items():
            setattr(base, k, v)
        return functional_call(call, params, (inp, target, eps))

    batched = vmap(member_loss, in_dims=(0, 0, 0, 0, 0))
    plain = vmap(lambda p, s, i, t: member_loss(p, s, i, t, None), in_dims=(0, 0, 0, 0))

    def run(params, settings, inp, target, eps):
        try:
            return batched(params, settings, inp, target, eps) if eps is not None else plain(params, settings, inp, target)
        finally:
            for k, v in floats.items():
                setattr(base, k, v)

    return run


def _draws(stack: _Stack, xb: torch.Tensor):
    """Each member's noisy inputs and VAE draws from its own noise generator, in fit's order."""
    noisy = [m.config.input_noise > 0 for m in stack.members]
    latent = hasattr(stack.members[0].model, "latent_noise")
    if not any(noisy) and not latent:
        return xb, None
    inputs, eps = [], []
    for j, m in enumerate(stack.members):
        gen = m.state.generators["noise"]
        inputs.append(add_noise(xb[j], m.config.input_noise, gen) if noisy[j] else xb[j])
        if latent:
            eps.append(m.model.latent_noise(xb.shape[1], gen, xb))
    return torch.stack(inputs), torch.stack(eps) if latent else None


def _epoch(stack: _Stack, run, x_train, val, epoch: int, t_start: float) -> None:
    t0, n, bs = time.perf_counter(), len(x_train), stack.members[0].config.batch_size
    for m in stack.members:
        start_epoch(m.state, epoch)
    settings = {k: torch.tensor([getattr(m.model, k) for m in stack.members], device=stack.flat.device)
                for k in stack.members[0].model.member_settings}
    perms = torch.stack([torch.randperm(n, generator=m.state.generators["shuffle"]) for m in stack.members])
    perms = perms.to(x_train.device)
    sums: dict[str, torch.Tensor] = {}
    for i in range(0, n, bs):
        xb = x_train[perms[:, i: i + bs]]
        inp, eps = _draws(stack, xb)
        parts = run(stack.params, settings, inp, xb, eps)
        stack.grad.zero_()
        parts["loss"].sum().backward()
        stack.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float() * xb.shape[1]
    means = {k: (v / n).tolist() for k, v in sums.items()}  # the epoch's one host sync
    for j, m in enumerate(stack.members):
        stack.sync(j)
        end_epoch(m.state, {k: v[j] for k, v in means.items()}, val, reconstruction_step, t0, t_start)


TIMING_STEPS = 6  # batches per timed fit in stacking_speedup


def timing_pays(configs: Sequence[TrainConfig], n_train: int) -> bool:
    """Whether a group trains long enough for :func:`stacking_speedup` to pay for itself: the
    timing runs about 1 + 3·TIMING_STEPS batches alone and as many stacked, so a group of fewer
    than three times that many batches (a --quick run) would spend more on timing than stacking
    could save; it trains one run after another, the reference semantics, without a timing."""
    batches = max(c.epochs for c in configs) * -(-n_train // max(c.batch_size for c in configs))
    return batches > 3 * (1 + 3 * TIMING_STEPS)


def stacking_speedup(build, x: torch.Tensor, configs: Sequence[TrainConfig],
                     steps: int = TIMING_STEPS) -> float:
    """How many times faster the members train stacked than one after another, timed here on
    ``steps`` batches of ``x`` with throwaway models (``build(i)`` makes member i's): what
    ``vectorize = "auto"`` decides by, on the device and threads at hand."""
    from dataclasses import replace

    from .train import fit

    cfgs = [replace(c, epochs=1, early_stopping=None) for c in configs]
    bs = cfgs[0].batch_size
    warm, timed = ({"train": x[: bs * n]} for n in (1, steps))

    def alone(data) -> float:
        t = time.perf_counter()
        fit(build(0), data, cfgs[0])
        return (time.perf_counter() - t) * len(cfgs)

    def together(data) -> float:
        t = time.perf_counter()
        fit_stacked([build(i) for i in range(len(cfgs))], data, cfgs)
        return time.perf_counter() - t

    alone(warm), together(warm)  # first calls allocate and pick kernels
    # The best of three, alternating: a busy machine slows a timing down, never speeds it up.
    times = [(alone(timed), together(timed)) for _ in range(3)]
    return min(a for a, _ in times) / min(t for _, t in times)
