"""Resume states: a running run's training state after an epoch, as safetensors.

The tensors (weights, optimizer buffers, generator states) go in as tensors; the rest (epoch,
history, callback states) as JSON metadata, so loading one executes nothing.
"""

from __future__ import annotations

import json


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
