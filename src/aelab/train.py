"""The training loop: ``fit(model, data, config, callbacks) -> History``.

Data stay as tensors in memory and are batched by index (no DataLoader, no per-sample Python);
validation runs in large batches under ``torch.inference_mode``. Early stopping (Keras
semantics), divergence and model schedules are callbacks (``aelab.callbacks``); so are
progress, trackers and the per-epoch resume state the study runner adds. ``fit`` seeds its
own generators from ``config.seed`` and leaves the global RNG alone.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from .callbacks import Callback, Divergence, EarlyStoppingCallback, FitState, History
from .models.base import Autoencoder
from .optim import OPTIMIZERS, flatten_parameters, make_optimizer

__all__ = ["TrainConfig", "EarlyStopping", "History", "fit", "evaluate_loss", "add_noise",
           "reconstruction_step", "classification_step", "peak_rss_mb"]


@dataclass
class EarlyStopping:
    """Keras ``EarlyStopping`` settings (the callback that applies them: ``callbacks.EarlyStoppingCallback``)."""

    monitor: Annotated[str, Field(description=(
        "the epoch value watched: train_<term> or val_<term> for a loss term of the model "
        "(loss, recon, penalty; kl for the VAE)"))] = "val_loss"
    patience: Annotated[int, Field(ge=0, le=100_000, description=(
        "epochs without improvement before stopping"))] = 5
    min_delta: Annotated[float, Field(ge=0, le=1e6, description=(
        "an epoch improves only if value < best - min_delta"))] = 0.0
    restore_best: Annotated[bool, Field(description=(
        "put the weights of the best epoch back at the end (Keras restore_best_weights)"))] = False


Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description=(
    "seeds initialisation, shuffling, noise and sampling of a run"))]


@dataclass
class TrainConfig:
    epochs: Annotated[int, Field(ge=1, le=100_000, description="the most epochs a run trains")] = 10
    batch_size: Annotated[int, Field(ge=1, le=1_000_000, description="images per step")] = 32
    optimizer: Annotated[Literal[tuple(OPTIMIZERS)], Field(description=(
        "Keras-exact optimizers; adadelta-original is Keras 1/2 Adadelta with learning rate 1.0"))] = "nadam"
    learning_rate: Annotated[float | None, Field(gt=0, le=100, description=(
        "step size; leave out for the optimizer's Keras default"))] = None
    early_stopping: EarlyStopping | None = None
    input_noise: Annotated[float, Field(ge=0, le=100, description=(
        "std of Gaussian noise added to inputs, clipped to [0, 1]; targets stay clean (denoising)"))] = 0.0
    seed: Seed = 0
    eval_batch_size: Annotated[int, Field(ge=1, le=1_000_000, description=(
        "images per validation batch: large is faster, it only costs memory"))] = 2048
    device: Annotated[Literal["cpu", "cuda", "auto"], Field(description=(
        "where to train; auto picks cuda when a GPU is there"))] = "cpu"
    precision: Annotated[Literal["fp32", "bf16"], Field(description=(
        "bf16 trains under autocast with fp32 weights and optimizer (CPUs with AVX-512-BF16/AMX, "
        "and GPUs); fp32 is Keras-exact"))] = "fp32"
    vectorize: Annotated[Literal["auto", "on", "off"], Field(description=(
        "train runs that differ only in seed, learning rate, input noise or regulariser settings as "
        "one stacked model (each within 1e-5 of its run alone); auto stacks a group when a timing "
        "of a few steps on this device says it is faster"))] = "auto"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def reset_peak_rss() -> None:
    """Linux lets a process reset its peak RSS (VmHWM) by writing 5 to clear_refs: per-run peaks."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB, on Linux, macOS and Windows."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    import psutil

    info = psutil.Process().memory_info()
    # Windows reports the peak working set; elsewhere psutil has only the current RSS.
    return getattr(info, "peak_wset", info.rss) / 2**20


def _tensors(data) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(data, torch.Tensor):
        return data, None
    return data.x, getattr(data, "y", None)


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + std * N(0, 1), clipped to [0, 1] (the Keras blog's denoising input)."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + std * noise).clamp_(0.0, 1.0)


# A step function turns one batch into the loss parts: fn(model, x, y, config, generator).
StepFn = Callable[..., dict]


def reconstruction_step(model, x, y, config: TrainConfig, generator) -> dict:
    """An autoencoder batch: noisy inputs if ``input_noise``, clean targets."""
    inp = add_noise(x, config.input_noise, generator) if config.input_noise else x
    return model.loss(inp, x, generator=generator)


def classification_step(model, x, y, config: TrainConfig, generator) -> dict:
    """A classifier batch: cross-entropy, and the error rate (misclassified fraction)."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    return {"loss": loss, "error": (logits.argmax(1) != y).float().mean()}


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.inference_mode()
def evaluate_loss(model, data, batch_size: int = 2048, input_noise: float = 0.0, seed: int = 0,
                  step: StepFn = reconstruction_step, precision: str = "fp32") -> dict[str, float]:
    """Mean of each loss part over ``data``, weighted by batch size (Keras ``evaluate``).

    Noise and sampling come from a generator seeded by ``seed``, so every evaluation of the same
    model gives the same number."""
    x, y = _tensors(data)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    cfg = TrainConfig(input_noise=input_noise)
    sums: dict[str, torch.Tensor] = {}
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        yb = None if y is None else y[i : i + batch_size].to(device)
        with _autocast(device, precision):
            parts = step(model, xb, yb, cfg, gen)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.float() * len(xb)
    model.train(was_training)
    return {k: (v / len(x)).item() for k, v in sums.items()}


@dataclass
class ResumeState:
    """Everything needed to continue a fit after its last finished epoch."""

    epoch: int
    history: History
    model: dict  # state_dict
    optimizer: dict  # state_dict
    generators: dict  # name -> torch.Generator state (uint8 tensor)
    callbacks: dict  # class name -> state_dict


def make_callbacks(model, config: TrainConfig, callbacks: Sequence[Callback] = ()) -> list[Callback]:
    """A fit's callbacks in call order: the model's own (e.g. k-sparse's schedule), divergence,
    early stopping (from ``config``), then the caller's."""
    es = config.early_stopping
    stoppers = [EarlyStoppingCallback(es.monitor, es.patience, es.min_delta, es.restore_best)] if es else []
    own = model.callbacks() if isinstance(model, Autoencoder) else []
    return [*own, Divergence(), *stoppers, *callbacks]


def fit(model, data, config: TrainConfig, callbacks: Sequence[Callback] = (), *,
        step: StepFn = reconstruction_step, resume: ResumeState | None = None) -> History:
    """Train ``model`` on ``data["train"]``, validating on ``data["val"]`` after every epoch.

    ``data`` maps "train" (and optionally "val") to a Dataset or an (N, C, H, W) tensor.
    Callbacks run in order: the model's own (e.g. k-sparse's schedule), divergence, early
    stopping (from ``config``), then ``callbacks``. ``resume`` continues a fit interrupted
    after an epoch with the same result as an uninterrupted one (on the same device).
    A NaN or infinite loss ends the run with status "diverged"; the model keeps its weights.
    """
    device = resolve_device(config.device)
    model.to(device).train()
    if device.type == "cpu" and any(p.dim() == 4 for p in model.parameters()):
        # Channels-last conv weights take oneDNN's fast path: same values, and a conv-model step
        # about 1.8x faster on CPU (bench_conv: 1.00x -> 1.9x over the plain loop).
        model.to(memory_format=torch.channels_last)
    x_train, y_train = (t.to(device) if t is not None else None for t in _tensors(data["train"]))
    val = data.get("val")
    n, bs = len(x_train), config.batch_size
    gens = {"shuffle": torch.Generator(device="cpu").manual_seed(config.seed),
            "noise": torch.Generator(device=device).manual_seed(config.seed + 1)}
    flat = flatten_parameters(model)
    opt = make_optimizer(config.optimizer, [flat], config.learning_rate)
    cbs = make_callbacks(model, config, callbacks)
    hist = History()
    state = FitState(model, opt, config, hist, gens, epoch=0, epochs=config.epochs, callbacks=cbs)
    if resume is not None:
        restore(state, resume)
    reset_peak_rss()
    t_start = time.perf_counter() - hist.seconds
    for cb in cbs:
        cb.on_fit_start(state)
    for epoch in range(state.epoch + 1, config.epochs + 1):
        if state.should_stop:
            break
        t0 = time.perf_counter()
        start_epoch(state, epoch)
        perm = torch.randperm(n, generator=gens["shuffle"]).to(device)
        sums: dict[str, torch.Tensor] = {}
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            xb = x_train[idx]
            yb = None if y_train is None else y_train[idx]
            with _autocast(device, config.precision):
                parts = step(model, xb, yb, config, gens["noise"])
            flat.grad.zero_()
            parts["loss"].backward()
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() * len(xb)
        means = dict(zip(sums, (torch.stack(list(sums.values())) / n).tolist()))  # one host sync
        end_epoch(state, means, val, step, t0, t_start)
    hist.seconds = time.perf_counter() - t_start
    return end_fit(state, device)


def start_epoch(state: FitState, epoch: int) -> None:
    state.epoch = epoch
    for cb in state.callbacks:
        cb.on_epoch_start(state)


def end_epoch(state: FitState, train: dict[str, float], val, step: StepFn, t0: float, t_start: float) -> None:
    """The epoch's record (the train means, the validation losses, seconds) into the history,
    then the callbacks see it: shared by ``fit`` and each member of ``fit_stacked``."""
    cfg = state.config
    record: dict = {"epoch": state.epoch, **{"train_" + k: v for k, v in train.items()}}
    if val is not None:
        vals = evaluate_loss(state.model, val, cfg.eval_batch_size, cfg.input_noise, cfg.seed, step, cfg.precision)
        record.update({"val_" + k: v for k, v in vals.items()})
    record["seconds"] = time.perf_counter() - t0
    state.history.epochs.append(record)
    state.history.seconds = time.perf_counter() - t_start
    for cb in state.callbacks:
        cb.on_epoch_end(state, record)


def end_fit(state: FitState, device: torch.device) -> History:
    """The fit ends: its callbacks' end hooks (e.g. restore-best), then the peak memory."""
    for cb in state.callbacks:
        cb.on_fit_end(state)
    hist = state.history
    hist.peak_rss_mb = peak_rss_mb()
    if device.type == "cuda":
        hist.peak_rss_mb = max(hist.peak_rss_mb, torch.cuda.max_memory_allocated(device) / 2**20)
    return hist


def snapshot(state: FitState) -> ResumeState:
    """The resume state after the epoch ``state.epoch`` (for a checkpointing callback)."""
    return ResumeState(
        epoch=state.epoch,
        history=History(**{**state.history.__dict__, "epochs": list(state.history.epochs)}),
        model={k: v.detach().clone() for k, v in state.model.state_dict().items()},
        optimizer=copy.deepcopy(state.optimizer.state_dict()),  # its tensors change in place
        generators={k: g.get_state() for k, g in state.generators.items()},
        callbacks={cb.state_key: cb.state_dict() for cb in state.callbacks if cb.state_dict()},
    )


def restore(state: FitState, resume: ResumeState) -> None:
    state.model.load_state_dict(resume.model)
    state.optimizer.load_state_dict(resume.optimizer)
    for name, g in state.generators.items():
        g.set_state(resume.generators[name])
    for cb in state.callbacks:
        if cb.state_key in resume.callbacks:
            cb.load_state_dict(resume.callbacks[cb.state_key])
    state.history.__dict__.update({**resume.history.__dict__, "epochs": list(resume.history.epochs)})
    state.epoch = resume.epoch
    if state.history.status != "completed":  # it had stopped; nothing more to train
        state.should_stop = True
