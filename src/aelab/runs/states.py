"""Resume states: a running run's training state after an epoch, as safetensors.

The tensors (weights, optimizer buffers, generator states) go in as tensors; the rest (epoch,
history, callback states) as JSON metadata, so loading one executes nothing.
"""

from __future__ import annotations

import json
import math


def _split(obj, prefix: str, tensors: dict):
    """A nested structure with its tensors moved into ``tensors`` (JSON-able remainder)."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _split(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _split(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _join(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: _join(v, tensors) for k, v in obj["__items__"]}
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def resume_bytes(state) -> bytes:
    """A train.ResumeState as safetensors: tensors, plus the rest as JSON metadata."""
    from dataclasses import asdict

    from safetensors.torch import save

    tensors: dict = {}
    meta = {"epoch": state.epoch, "history": asdict(state.history),
            "model": _split(state.model, "model", tensors),
            "optimizer": _split(state.optimizer, "optimizer", tensors),
            "generators": _split(state.generators, "generators", tensors),
            "callbacks": _split(state.callbacks, "callbacks", tensors)}
    return save(tensors, metadata={"aelab-resume": json.dumps(meta)})


def load_resume(data: bytes):
    """The train.ResumeState saved by :func:`resume_bytes`, or None if unreadable."""
    from safetensors.torch import load

    from ..callbacks import History
    from ..train import ResumeState

    try:
        tensors = load(data)
        header = int.from_bytes(data[:8], "little")  # safetensors: u64 header length, JSON header
        meta = json.loads(json.loads(data[8 : 8 + header])["__metadata__"]["aelab-resume"])
        return ResumeState(epoch=meta["epoch"], history=History(**meta["history"]),
                           model=_join(meta["model"], tensors),
                           optimizer=_join(meta["optimizer"], tensors),
                           generators=_join(meta["generators"], tensors),
                           callbacks=_join(meta["callbacks"], tensors))
    except Exception:  # a half-written or foreign file: start that run again
        return None


def check_resume(state, spec, input_shape: tuple[int, ...]) -> str:
    """Why a loaded resume state cannot continue the run ``spec`` ("" if it can): a state is
    read from a folder that is not trusted, so its epoch must lie in [0, epochs], its history
    hold one record per epoch, and its tensors have the shapes of the model and its optimizer
    (over one flat parameter vector, see train.flatten_parameters)."""
    import torch

    from ..callbacks import History
    from ..models import inspect_model

    if state is None:
        return "its saved state cannot be read"
    if type(state.epoch) is not int or not 0 <= state.epoch <= spec.train.epochs:
        return f"its saved epoch {str(state.epoch)[:40]} is not within 0 to {spec.train.epochs}"
    hist = state.history
    if (not isinstance(hist, History) or not isinstance(hist.epochs, list) or len(hist.epochs) != state.epoch
            or not all(isinstance(e, dict) for e in hist.epochs) or not isinstance(hist.seconds, (int, float))):
        return "its saved history does not hold one record per epoch"
    expected = inspect_model(spec.model, spec.params, input_shape, 1, max_bytes=0).shapes
    model = state.model if isinstance(state.model, dict) else {}
    if {k: tuple(v.shape) for k, v in model.items() if isinstance(v, torch.Tensor)} != expected:
        return "its saved weights do not have the model's shapes"
    n = sum(math.prod(s) for s in expected.values())
    opt = state.optimizer if isinstance(state.optimizer, dict) else {}
    buffers = [v for s in (opt.get("state") or {}).values() if isinstance(s, dict) for v in s.values()]
    if (not isinstance(opt.get("state"), dict) or len(opt.get("param_groups") or []) != 1
            or not all(isinstance(v, (torch.Tensor, int, float)) and (not isinstance(v, torch.Tensor)
                       or tuple(v.shape) in ((), (n,))) for v in buffers)):
        return "its saved optimizer state does not fit the model"
    gens = state.generators if isinstance(state.generators, dict) else {}
    if set(gens) != {"shuffle", "noise"} or not all(
            isinstance(g, torch.Tensor) and g.dtype == torch.uint8 for g in gens.values()):
        return "its saved random generators are damaged"
    return ""
