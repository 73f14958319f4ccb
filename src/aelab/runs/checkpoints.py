"""Checkpoints: a trained model's tensors plus its spec, as safetensors (no pickled code).

A checkpoint is loaded only after its spec has been checked like a study's model entry and
every tensor's name, shape and type found to match the model it describes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import AelabError
from ..params import short
from .folder import atomic_write

MAX_CHECKPOINT_PARAMETERS = 2_000_000_000  # refuse a spec that would build more before reading it
MAX_CHECKPOINT_INPUT = 1 << 22  # values per image (C·H·W, e.g. 3×1182×1182): rebuilding runs two through
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors' names; load_state_dict casts between them


def checkpoint_bytes(model) -> bytes:
    """Tensors plus the model spec as safetensors metadata: loading runs no pickled code."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return save(state, metadata={"aelab": json.dumps(model.spec)})


def save_checkpoint(path: str | Path, model) -> None:
    atomic_write(Path(path), checkpoint_bytes(model))


def load_checkpoint(path: str | Path, device: str = "cpu", nonfinite: bool = False):
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`, in eval mode.

    Nothing in the file is executed (safetensors holds no code), and nothing is allocated for
    it until its spec has been checked like a study's model entry, the model sized on PyTorch's
    meta device, and every tensor's name, shape and type found to match that model. Any
    problem is one sentence naming the file; so are NaN or infinite weights, unless
    ``nonfinite`` (the checkpoint of a run that diverged keeps them)."""
    from ..models import create_model, inspect_model

    path = Path(path)

    def bad(why: str) -> AelabError:
        return AelabError(f"Checkpoint {path} {why}; is it an aelab checkpoint?")

    meta, shapes, dtypes = _header(path, bad)
    try:
        spec = json.loads(meta["aelab"])
        name, params, shape = spec["model"], spec["params"], spec["input_shape"]
        if not (isinstance(name, str) and isinstance(params, dict) and isinstance(shape, list)
                and 1 <= len(shape) <= 3 and all(type(s) is int and 1 <= s <= 100_000 for s in shape)):
            raise TypeError
    except (KeyError, TypeError, ValueError, RecursionError):
        raise bad("has no valid aelab model spec") from None
    if math.prod(shape) > MAX_CHECKPOINT_INPUT:
        raise bad(f"is for images of shape {tuple(shape)}, more than {MAX_CHECKPOINT_INPUT:,} values "
                  "per image")
    try:  # max_bytes=0: sized on the meta device only (parameter count and tensor shapes)
        size = inspect_model(name, params, tuple(shape), 1, max_bytes=0)
    except AelabError as err:
        raise bad(f"has a model spec that cannot be built ({str(err).rstrip('.')})") from None
    except Exception as err:  # a factory that trips over a strange spec: still the file's fault
        raise bad(f"has a model spec that cannot be built ({type(err).__name__})") from None
    if size.parameters > MAX_CHECKPOINT_PARAMETERS:
        raise bad(f"describes a model of {size.parameters:,} parameters, more than the "
                  f"{MAX_CHECKPOINT_PARAMETERS:,} a checkpoint may hold")
    expected = size.shapes
    if expected != shapes:
        diff = next((k for k in sorted(set(expected) | set(shapes)) if expected.get(k) != shapes.get(k)), "?")
        raise bad(f"does not match its model spec (tensor {short(diff)}: file {shapes.get(diff)}, "
                  f"model {expected.get(diff)})")
    odd = next((k for k, t in dtypes.items() if t not in FLOAT_DTYPES), None)
    if odd is not None:
        raise bad(f"holds tensor {short(odd)} of type {dtypes[odd]}, not floating point")
    from safetensors.torch import load_file

    try:
        model = create_model(name, tuple(shape), **params)
        model.load_state_dict(load_file(str(path), device="cpu"))
    except AelabError as err:
        raise bad(f"has a model spec that cannot be built ({str(err).rstrip('.')})") from None
    except (RuntimeError, OSError) as err:  # the file changed under us, or a layer refused its input
        raise bad(f"cannot be loaded ({' '.join(str(err).split())[:200]})") from None
    odd = next((k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()), None)
    if odd is not None and not nonfinite:
        raise AelabError(f"Checkpoint {path} holds NaN or infinite weights (tensor {short(odd)}): a model "
                         "that diverged, or a damaged file; it is not loaded.")
    return model.to(device).eval()


def _header(path: Path, bad) -> tuple[dict, dict, dict]:
    """A checkpoint's metadata and each tensor's shape and type, read without loading a tensor."""
    from safetensors import safe_open

    if not path.is_file():
        raise bad("does not exist or is not a file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shapes, dtypes = {}, {}
            for k in f.keys():
                tensor = f.get_slice(k)
                shapes[k], dtypes[k] = tuple(tensor.get_shape()), str(tensor.get_dtype())
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise bad(f"cannot be read ({' '.join(str(err).split())[:200]})") from None
    return meta, shapes, dtypes
