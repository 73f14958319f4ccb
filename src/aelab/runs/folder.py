"""The run folder: its layout, atomic writes, the lock, and the study's results files.

A study writes into ``<out>.incomplete/``, visible from the start and never deleted by aelab:
``study.toml`` and ``resume.json`` first; then, as each run finishes, its checkpoint and the
study's ``metrics.json``, ``history.csv`` and ``console.log`` so far, each written atomically
(temporary file + rename); the running run's resume state after every epoch, in ``resume/``.
Finishing removes ``resume/`` and renames the folder to ``<out>``. A lock keeps a second
process out; every file written is checked to lie inside the folder, and every file read
(:func:`read_inside`) to be a regular file inside it, of bounded size: folders are not trusted.

Every name in a run folder is defined here, once; other modules ask for them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from ..errors import AelabError, FolderError
from ..params import slug
from .lock import NAME as LOCK  # held by the process writing the folder; gone once finished
from .lock import Lock

# The layout of a run folder.
STUDY = "study.toml"  # the study as it ran: file, --quick and --set merged
RESUME = "resume.json"  # what --resume needs besides study.toml (RESUME_FIELDS); gone once finished
METRICS = "metrics.json"  # every run's record and the study's results (records.RunRecord JSON)
HISTORY = "history.csv"  # one row per (run, epoch)
LOG = "console.log"  # the console printout
REPORT = "report.html"
CHECKPOINTS = "checkpoints"  # <run>.safetensors: a finished run's model
STATES = "resume"  # <run>.safetensors: an unfinished run's state after its last epoch; gone once finished
FIGURES = "figures"  # <name>.png, made by the steps
TENSORBOARD = "tensorboard"  # --track tensorboard's event folders, unless --track-uri says where
INCOMPLETE = ".incomplete"  # suffix of a folder whose study has not finished
FILES = (STUDY, RESUME, METRICS, HISTORY, LOG, REPORT, LOCK)
FOLDERS = (CHECKPOINTS, STATES, FIGURES, TENSORBOARD)
TENSORS = ".safetensors"

# resume.json: what `aelab run --resume` needs besides study.toml, with the types it must have.
RESUME_FIELDS = {"study": str, "source": str, "quick": bool, "data_dir": (str, type(None)), "started": str}


def checkpoint_path(folder: str | Path, run: str) -> Path:
    """Where the checkpoint of ``run`` is in a run folder."""
    return Path(folder) / CHECKPOINTS / f"{run}{TENSORS}"


def figure_paths(folder: str | Path, names: list[str] = ()) -> list[Path]:
    """The figures of a run folder: those in ``names`` first, in that order, then any other.
    A name that is not a plain file name (``../x``, ``/etc/x``) names no figure of the folder."""
    figures = Path(folder) / FIGURES
    if figures.is_symlink():
        raise refused(figures, "is a symbolic link")
    if not figures.is_dir():
        return []
    plain = [n for n in names if isinstance(n, str) and n and "/" not in n and os.sep not in n
             and not n.startswith(".")]
    ordered = [figures / f"{n}.png" for n in dict.fromkeys(plain) if os.path.lexists(figures / f"{n}.png")]
    return ordered + [p for p in sorted(figures.glob("*.png")) if p not in ordered]


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


def _os_error(err: OSError, what: str, advice: str = "pass another --out") -> FolderError:
    reason = err.strerror or " ".join(str(err).split())
    return FolderError(f"Cannot {what} ({reason}); {advice}.")


# What a reader takes from a run folder, at most (bytes): a bigger file was not written by aelab.
MAX_JSON = 64 << 20  # metrics.json: 1,000 runs of 1,000 epochs is about 20 MB
MAX_TEXT = 16 << 20  # console.log, study.toml (which parse_toml caps lower)
MAX_FIGURE = 32 << 20  # one PNG
MAX_TENSORS = 16 << 30  # a checkpoint or resume state (checkpoints.MAX_CHECKPOINT_PARAMETERS in fp64)
MAX_JSON_DEPTH = 64  # metrics.json nests 5 deep; deeper would trip recursion in its readers


def refused(path, why: str) -> FolderError:
    return FolderError(f"Refusing to read {path}: it {why}; a run folder holds only the regular "
                       "files aelab wrote.")


def inside(folder: str | Path, *parts: str, limit: int) -> Path:
    """The path of ``parts`` in ``folder`` if a reader may take it: a regular file (no symbolic
    link on the way, no FIFO or device), inside the folder, of at most ``limit`` bytes; else one
    sentence naming it. Run folders are shared and mailed, so their files are not trusted."""
    root = os.path.realpath(folder)
    path = os.path.join(root, *parts)
    if any(p in ("", ".", "..") or "/" in p or os.sep in p for p in parts):
        raise refused(Path(folder).joinpath(*parts), "lies outside the run folder")
    if os.path.realpath(path) != path:
        raise refused(path, "is a symbolic link or lies under one")
    try:
        st = os.lstat(path)
    except OSError as err:
        raise _os_error(err, f"read {path}", "is the run folder complete?") from None
    _check_stat(path, st, limit)
    return Path(path)


def _check_stat(path, st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise refused(path, "is not a regular file (a folder, FIFO, device or link)")
    if st.st_size > limit:
        raise refused(path, f"is larger than {limit >> 20:,} MB")


def read_inside(folder: str | Path, *parts: str, limit: int) -> bytes:
    """The bytes of a file :func:`inside` the folder, opened without following a link and
    without blocking (so a FIFO put in its place cannot hang the reader)."""
    path = inside(folder, *parts, limit=limit)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise _os_error(err, f"read {path}", "is the run folder complete?") from None
    with os.fdopen(fd, "rb") as f:
        _check_stat(path, os.fstat(fd), limit)  # what was opened, not what was looked at
        data = f.read(limit + 1)
    if len(data) > limit:
        raise refused(path, f"is larger than {limit >> 20:,} MB")
    return data


def read_json(folder: str | Path, name: str, limit: int = MAX_JSON):
    """A JSON file of the folder, read by :func:`read_inside`, of bounded nesting; one sentence
    if it cannot be parsed."""
    path = Path(folder) / name
    try:
        data = json.loads(read_inside(folder, name, limit=limit))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise FolderError(f"{path} cannot be read ({' '.join(str(err).split())[:200]}); it is damaged.") from None
    stack = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise FolderError(f"{path} nests deeper than {MAX_JSON_DEPTH} levels; it is damaged.")
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
        stack += [(v, depth + 1) for v in children]
    return data


def _check_resume_json(path: Path) -> dict:
    """The resume.json of an unfinished folder, or one sentence saying why it cannot be used."""
    try:
        state = read_json(path.parent, path.name, limit=1 << 20)
    except FolderError as err:
        raise FolderError(f"{str(err).rstrip('.')}, so the study cannot be resumed.") from None
    if not isinstance(state, dict):
        raise FolderError(f"{path} is damaged (not a JSON object), so the study cannot be resumed.")
    bad = next((k for k, t in RESUME_FIELDS.items() if k in state and not isinstance(state[k], t)), None)
    if bad is not None:
        raise FolderError(f"{path} is damaged ({bad} has the wrong type), so the study cannot be resumed.")
    return state


class RunFolder:
    """A study's folder under construction (``path`` = ``<final>.incomplete``)."""

    def __init__(self, path: Path, final: Path, resume_state: dict | None = None):
        self.path, self.final = Path(path), Path(final)
        self.resume_state = resume_state or {}  # resume.json of an opened folder, checked
        self._lock = Lock(self.path)
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
            if Lock.busy(incomplete):
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
        if not (os.path.lexists(path / STUDY) and os.path.lexists(path / RESUME)):
            raise FolderError(f"{path} has no {STUDY} and {RESUME}, so it cannot be resumed.")
        inside(path, STUDY, limit=MAX_TEXT)
        state = _check_resume_json(path / RESUME)
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

    def start(self, study_toml: str, resume: dict) -> None:
        """The study as it runs and what ``--resume`` needs (RESUME_FIELDS), written first."""
        from ..records import dumps

        self.write(STUDY, data=study_toml)
        self.write(RESUME, data=dumps(resume))

    @property
    def study_file(self) -> Path:
        return self.path / STUDY

    @property
    def has_metrics(self) -> bool:
        return os.path.lexists(self.path / METRICS)

    def write_results(self, metrics: dict, log: str) -> None:
        """The study so far: metrics.json, history.csv (from its runs) and console.log."""
        from ..records import dumps

        self.write(METRICS, data=dumps(metrics))
        self.write(HISTORY, data=history_csv(metrics["runs"]))
        self.write(LOG, data=log)

    def checkpoint(self, run: str) -> Path:
        return self.file(CHECKPOINTS, run + TENSORS)

    def has_checkpoint(self, run: str) -> bool:
        """Whether ``run`` has a checkpoint; one that is not a regular file inside is refused."""
        return os.path.lexists(self.checkpoint(run)) and bool(inside(self.path, CHECKPOINTS, run + TENSORS,
                                                                     limit=MAX_TENSORS))

    def write_checkpoint(self, run: str, data: bytes) -> None:
        self.write(CHECKPOINTS, run + TENSORS, data=data)

    def read_state(self, run: str) -> bytes | None:
        """The resume state of ``run`` saved after its last finished epoch, if any."""
        path = self.file(STATES, run + TENSORS)
        return read_inside(self.path, STATES, path.name, limit=MAX_TENSORS) if os.path.lexists(path) else None

    def write_state(self, run: str, data: bytes) -> None:
        self.write(STATES, run + TENSORS, data=data)

    def drop_state(self, run: str) -> None:
        self.remove(STATES, run + TENSORS)

    def save_figure(self, name: str, fig) -> Path:
        """Save a matplotlib figure as figures/<name>.png and close it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)
        return self.write(FIGURES, f"{name}.png", data=buf.getvalue())

    def remove(self, *parts: str) -> None:
        path = self.file(*parts)
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise _os_error(err, f"remove {path}", "the runs finished so far are kept") from None

    def finish(self) -> Path:
        """Drop the resume files and move the folder to its final name."""
        shutil.rmtree(self.file(STATES), ignore_errors=True)
        self.remove(RESUME)
        (self.path / LOCK).unlink(missing_ok=True)
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
    """The metrics.json of a run folder (finished, or unfinished with its runs so far), its
    records and tables checked (records.check_metrics): a folder is not trusted."""
    from ..records import check_metrics

    path = Path(path)
    if not os.path.lexists(path / METRICS):
        raise AelabError(f"{path} is not an aelab run folder (no {METRICS}).")
    data = read_json(path, METRICS)
    check_metrics(data, path / METRICS)
    return data


def read_resume(path: str | Path) -> dict:
    """The resume.json of an unfinished folder as far as it can be read: its fields of the
    right type ({} when there is none or it is damaged), for reading a folder back."""
    try:
        state = read_json(path, RESUME, limit=1 << 20)
    except FolderError:
        return {}
    if not isinstance(state, dict):
        return {}
    return {k: v for k, v in state.items() if k in RESUME_FIELDS and isinstance(v, RESUME_FIELDS[k])}
