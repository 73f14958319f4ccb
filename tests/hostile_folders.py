"""Hostile run folders: a real finished folder mutated (links to a secret outside, FIFOs,
folders and huge files in place of files, deleted or truncated files, mistyped and deep JSON,
a tampered lock) then given to ``report``, ``compare``, ``load_run`` or ``run --resume``.
Shared by ``tests/test_hostile_folders.py`` (hypothesis) and ``benchmarks/fuzz_studies.py``.

:func:`attack` says which class the result falls in: "ok" (exit 0), "error" (exit 1 or 2 with
one line on stderr), "unclean" (more lines), "crash" (a traceback or another exit code),
"outside" (a file written outside the folder), "leak" (the secret read into a page), "hang".
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
from pathlib import Path

from tests.hostile import hostile_values

SECRET = "TOP-SECRET-OUTSIDE-THE-FOLDER"
COMMANDS = ("report", "compare", "load_run", "resume")
DEEP = "[" * 5000 + "]" * 5000


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _json_path(rnd, obj):
    """A random (container, key) inside a JSON value, for replacing one value."""
    spot = None
    for _ in range(6):
        if isinstance(obj, dict) and obj:
            key = rnd.choice(list(obj))
        elif isinstance(obj, list) and obj:
            key = rnd.randrange(len(obj))
        else:
            break
        spot, obj = (obj, key), obj[key]
    return spot


def mutate(rnd: random.Random, folder: Path) -> str:
    """One hostile change to ``folder``; returns what it did."""
    secret = folder.parent / "secret.txt"
    target = rnd.choice(_files(folder) + [folder / "figures", folder / ".lock"])
    kind = rnd.choice(["link", "fifo", "dir", "huge", "delete", "truncate", "json", "json", "json", "deep"])
    if kind in ("json", "deep"):
        target = folder / rnd.choice(["metrics.json", "metrics.json", "resume.json"])
        if target.is_symlink() or (os.path.lexists(target) and not target.is_file()):
            return f"{kind} {target.name} skipped (no longer a file)"
        try:
            data = json.loads(target.read_text()) if target.is_file() else {}
        except (ValueError, RecursionError):  # mutated already
            data = {}
        spot = _json_path(rnd, data)
        value = hostile_values(rnd)
        if spot is None:
            text = json.dumps(value, default=str)
        else:
            spot[0][spot[1]] = "__DEEP__" if kind == "deep" else value
            text = json.dumps(data, default=str)
        text = text.replace('"__DEEP__"', DEEP)
        target.write_text(text.replace('"__aelab_deep_nesting__"', DEEP))
        return f"{kind} {target.name}"
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif os.path.lexists(target):
        target.unlink()
    if kind == "link":
        target.symlink_to(secret if rnd.random() < 0.7 else folder.parent / "made-by-aelab")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dir":
        target.mkdir()
    elif kind == "huge":
        with open(target, "wb") as f:
            f.truncate(1 << 31)
    elif kind == "truncate":
        target.write_bytes(b"\x00{" * rnd.randrange(3))
    return f"{kind} {target.relative_to(folder)}"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def attack(finished: Path, work: Path, rnd: random.Random, seconds: int = 120) -> tuple[str, str]:
    """Copy ``finished`` into ``work``, mutate it, run one command on it: (class, what)."""
    from typer.testing import CliRunner

    from aelab.cli import app

    (work / "secret.txt").write_text(SECRET)
    command = rnd.choice(COMMANDS)
    folder = work / ("run.incomplete" if command == "resume" else "run")
    shutil.copytree(finished, folder, symlinks=True)
    if command == "resume":
        (folder / "resume.json").write_text(json.dumps({"study": "tiny", "source": "", "quick": False,
                                                        "data_dir": None, "started": "now"}))
    what = f"{command}: " + "; ".join(mutate(rnd, folder) for _ in range(rnd.randrange(1, 3)))
    before = _tree(work) - {str(p.relative_to(work)) for p in [folder, *folder.rglob("*")]}
    args = {"report": ["report", str(folder)], "compare": ["compare", str(folder), "--out", str(work / "cmp")],
            "resume": ["run", "--resume", str(folder), "--quiet"]}.get(command)

    def timeout(*_):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        cls = _load_run(folder) if args is None else _cli(CliRunner().invoke(app, args))
    except TimeoutError:
        cls = "hang"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    done = folder.with_name("run") if command == "resume" else folder
    made = _tree(work) - before - {"run", "cmp", "run.incomplete"}
    if any(not m.startswith(("run/", "run.incomplete/", "cmp/")) for m in made) or (work / "made-by-aelab").exists():
        cls = "outside"
    secret64 = base64.b64encode(SECRET.encode()).decode()[:24]
    for page in [*done.glob("report.html"), *work.glob("cmp/*.html")]:
        text = page.read_text(errors="replace") if page.is_file() and not page.is_symlink() else ""
        if SECRET in text or secret64 in text:
            cls = "leak"
    return cls, what


def _cli(result) -> str:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "crash"
    if result.exit_code == 0:
        return "ok"
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    if result.exit_code in (1, 2):
        return "error" if len(lines) == 1 and lines[0].startswith("aelab: ") else "unclean"
    return "crash"


def _load_run(folder: Path) -> str:
    import aelab
    from aelab.errors import AelabError

    try:
        run = aelab.load_run(folder)
        repr(run)
        for name in run.models:
            run.models[name]
    except AelabError as err:
        return "error" if "\n" not in str(err) else "unclean"
    return "ok"
