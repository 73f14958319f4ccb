"""The run folder: everything a study writes, durable from the first finished run.

A study writes into ``<out>.incomplete/``, visible from the start and never deleted by aelab:
``study.toml`` and ``resume.json`` first; then, as each run finishes, its checkpoint and the
study's ``metrics.json``, ``history.csv`` and ``console.log`` so far, each written atomically
(temporary file + rename); the running run's resume state after every epoch, in ``resume/``.
Finishing removes ``resume/`` and renames the folder to ``<out>``. A lock keeps a second
process out; every file written is checked to lie inside the folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
import uuid
from pathlib import Path

from .errors import AelabError
from .params import short, slug

INCOMPLETE = ".incomplete"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``.

    The file is created with mode 0666 so the process umask applies, as for any new file (no
    umask is read or changed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class FolderError(AelabError):
    """The run folder cannot be created or written."""


def _os_error(err: OSError, what: str, advice: str = "pass another --out") -> FolderError:
    reason = err.strerror or " ".join(str(err).split())
    return FolderError(f"Cannot {what} ({reason}); {advice}.")


# resume.json: what `aelab run --resume` needs besides study.toml, with the types it must have.
RESUME_FIELDS = {"study": str, "source": str, "quick": bool, "data_dir": (str, type(None)), "started": str}


def _check_resume_json(path: Path) -> dict:
    """The resume.json of an unfinished folder, or one sentence saying why it cannot be used."""
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise FolderError(f"{path} cannot be read ({' '.join(str(err).split())[:200]}), so the study "
                          "cannot be resumed.") from None
    if not isinstance(state, dict):
        raise FolderError(f"{path} is damaged (not a JSON object), so the study cannot be resumed.")
    bad = next((k for k, t in RESUME_FIELDS.items() if k in state and not isinstance(state[k], t)), None)
    if bad is not None:
        raise FolderError(f"{path} is damaged ({bad} has the wrong type), so the study cannot be resumed.")
    return state


class _Lock:
    """An exclusive lock on ``<folder>/.lock``, held while a process writes the folder; the OS
    releases it if the process dies, so a killed run never leaves a stale lock."""

    def __init__(self, folder: Path):
        self.file = open(folder / ".lock", "a+")  # noqa: SIM115 (held for the folder's lifetime)
        try:
            import fcntl

            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows
            import msvcrt

            try:
                msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
            except OSError:
                self._busy(folder)
        except OSError:
            self._busy(folder)

    @staticmethod
    def busy(folder: Path) -> bool:
        """Whether another process holds the lock of ``folder`` (probed, nothing created)."""
        try:
            f = open(folder / ".lock", "rb")  # noqa: SIM115
        except OSError:
            return False  # no lock file: nobody has held it since the folder was made
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except ImportError:  # pragma: no cover - Windows: the lock is mandatory there
            return False
        except OSError:
            return True
        finally:
            f.close()

    def _busy(self, folder: Path):
        self.file.close()
        raise FolderError(f"Another aelab process is writing {folder}; wait for it to finish or "
                          "pass another --out.")

    def release(self) -> None:
        self.file.close()


class RunFolder:
    """A study's folder under construction (``path`` = ``<final>.incomplete``)."""

    def __init__(self, path: Path, final: Path, resume_state: dict | None = None):
        self.path, self.final = Path(path), Path(final)
        self.resume_state = resume_state or {}  # resume.json of an opened folder, checked
        self._lock = _Lock(self.path)
        self._root = self.path.resolve()

    @staticmethod
    def check_target(final: str | Path) -> Path:
        """Whether a study can write ``<final>.incomplete`` and finish as ``final``, known before
        any data is read or model trained; one sentence if not. Returns ``final`` as a Path."""
        final = Path(final)
        if final.name in ("", ".", ".."):
            raise FolderError(f"--out {final} names no folder; give a new folder's name, e.g. runs/my-study.")
        incomplete = final.with_name(final.name + INCOMPLETE)
        if os.path.lexists(final):
            what = "is a broken symbolic link" if final.is_symlink() and not final.exists() else "exists already"
            raise FolderError(f"Output folder {final} {what}; pass another --out.")
        if os.path.lexists(incomplete):
            if incomplete.is_symlink() or not incomplete.is_dir():
                raise FolderError(f"{incomplete} is in the way (it is not a folder aelab made); move it "
                                  "or pass another --out.")
            if _Lock.busy(incomplete):
                raise FolderError(f"Another aelab process is writing {incomplete}; wait for it to finish "
                                  "or pass another --out.")
            raise FolderError(f"{incomplete} holds an unfinished run of this study; resume it with "
                              f"`aelab run --resume {incomplete}` or pass another --out.")
        parent = final.parent
        while not os.path.lexists(parent) and parent != parent.parent:
            parent = parent.parent  # the folders that do not exist yet are made on the way
        if not parent.is_dir():
            raise FolderError(f"Cannot create {final}: {parent} is a file or a broken link, not a folder; "
                              "pass another --out.")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise FolderError(f"Cannot create {final}: {parent} is not writable; pass another --out.")
        return final

    @classmethod
    def create(cls, final: str | Path) -> RunFolder:
        """A new ``<final>.incomplete``; refuses when ``final`` or an unfinished run is there."""
        final = cls.check_target(final)
        incomplete = final.with_name(final.name + INCOMPLETE)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _os_error(err, f"create the folder {final.parent}") from None
        try:
            os.mkdir(incomplete)
        except FileExistsError:
            raise FolderError(f"{incomplete} was just created by another process; pass another --out.") from None
        except OSError as err:
            raise _os_error(err, f"create the run folder {incomplete}") from None
        return cls(incomplete, final)

    @classmethod
    def open(cls, incomplete: str | Path) -> RunFolder:
        """An unfinished run folder, for ``aelab run --resume``."""
        path = Path(incomplete)
        if not path.name.endswith(INCOMPLETE) or not path.is_dir():
            raise FolderError(f"--resume needs an unfinished run folder (<name>{INCOMPLETE}); "
                              f"{path} is not one.")
        if not (path / "study.toml").is_file() or not (path / "resume.json").is_file():
            raise FolderError(f"{path} has no study.toml and resume.json, so it cannot be resumed.")
        state = _check_resume_json(path / "resume.json")
        final = path.with_name(path.name[: -len(INCOMPLETE)])
        if os.path.lexists(final):
            raise FolderError(f"{final} exists already, so {path} cannot be finished there; move one away.")
        return cls(path, final, state)

    @staticmethod
    def default_name(study_name: str, root: str | Path = "runs") -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out, n = Path(root) / f"{study_name}-{stamp}", 1
        while os.path.lexists(out) or os.path.lexists(str(out) + INCOMPLETE):  # two in one second
            n += 1
            out = Path(root) / f"{study_name}-{stamp}-{n}"
        return out

    def file(self, *parts: str) -> Path:
        """The path of a file in the folder; every name is a slug and the result lies inside."""
        for p in parts:
            slug(p, "file name")
        path = self.path.joinpath(*parts)
        if not path.resolve().is_relative_to(self._root):
            raise FolderError(f"Refusing to write {path}: it lies outside the run folder {self.path}.")
        return path

    def write(self, *parts: str, data: str | bytes) -> Path:
        path = self.file(*parts)
        try:
            atomic_write(path, data)
        except OSError as err:
            # A full disk or a folder gone read-only mid-study: what finished is on disk already.
            raise _os_error(err, f"write {path}", "the runs finished so far are kept, so make room and "
                            f"continue with `aelab run --resume {self.path}`") from None
        return path

    def read(self, *parts: str) -> str | None:
        path = self.file(*parts)
        return path.read_text() if path.is_file() else None

    def save_figure(self, name: str, fig) -> Path:
        """Save a matplotlib figure as figures/<name>.png and close it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)
        return self.write("figures", f"{name}.png", data=buf.getvalue())

    def remove(self, *parts: str) -> None:
        path = self.file(*parts)
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise _os_error(err, f"remove {path}", "the runs finished so far are kept") from None

    def finish(self) -> Path:
        """Drop the resume files and move the folder to its final name."""
        shutil.rmtree(self.file("resume"), ignore_errors=True)
        self.remove("resume.json")
        (self.path / ".lock").unlink(missing_ok=True)
        self._lock.release()
        try:
            os.rename(self.path, self.final)
        except OSError as err:
            raise _os_error(err, f"rename {self.path} to {self.final}",
                            f"the finished study is complete in {self.path}") from None
        return self.final

    def release(self) -> None:
        self._lock.release()


def history_csv(entries: list[dict]) -> str:
    """One row per (run, epoch): run name then every key that appears in any epoch record."""
    keys: list[str] = []
    for r in entries:
        for e in r.get("history") or []:
            keys += [k for k in e if k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", *keys])
    for r in entries:
        for e in r.get("history") or []:
            w.writerow([r["name"], *(e.get(k, "") for k in keys)])
    return buf.getvalue()


def read_metrics(path: str | Path) -> dict:
    """The metrics.json of a run folder (finished, or unfinished with its runs so far)."""
    path = Path(path)
    metrics = path / "metrics.json"
    if not metrics.is_file():
        raise AelabError(f"{path} is not an aelab run folder (no metrics.json).")
    try:
        data = json.loads(metrics.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AelabError(f"{metrics} cannot be read ({err}); it is damaged.") from None
    if (not isinstance(data, dict) or not isinstance(data.get("runs", []), list)
            or not all(isinstance(r, dict) for r in data.get("runs", []))):
        raise AelabError(f"{metrics} does not hold aelab results (no list of runs).")
    return data


# ---------------------------------------------------------------- checkpoints

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


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`, in eval mode.

    Nothing in the file is executed (safetensors holds no code), and nothing is allocated for
    it until its spec has been checked like a study's model entry, the model sized on PyTorch's
    meta device, and every tensor's name, shape and type found to match that model. Any
    problem is one sentence naming the file."""
    from safetensors import safe_open

    from .models import create_model, inspect_model

    path = Path(path)

    def bad(why: str) -> AelabError:
        return AelabError(f"Checkpoint {path} {why}; is it an aelab checkpoint?")

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
    return model.to(device).eval()


# ---------------------------------------------------------------- resume states


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

    from .callbacks import History
    from .train import ResumeState

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
