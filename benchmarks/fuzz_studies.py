"""A fuzzing campaign over hostile study files: built-in studies mutated by ``tests/hostile.py``,
loaded with ``load_study`` and (a sample) run through the CLI, with outcomes counted per class.

    python benchmarks/fuzz_studies.py --n 2000 --cli 100 --seed 1

Classes: loaded (the study checks out), error (an AelabError of one line: the promised
sentence), unclean (an AelabError that is not one line), crash (any other exception), outside
(a file appeared outside the run folder); at the CLI also late (the study loaded, then its run
did not finish with exit 0). At the CLI, ``aelab show FILE`` must exit 2 with one
line on stderr for a refused file, and ``aelab run FILE --out DIR`` must create nothing; a file
that loads is run on 300 embedded digits (7 classes) for one epoch, and every file it writes must lie in
``DIR`` (or ``DIR.incomplete``). The bar: at least 98% loaded or error, and 0 outside.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hostile import Case, _tree, make_case, outcome  # noqa: E402


def campaign(n: int, seed: int, verbose: bool) -> collections.Counter:
    from aelab.config import Limits

    limits = Limits(max_runs=1000, max_memory=8 * 2**30)
    counts: collections.Counter = collections.Counter()
    rnd = random.Random(seed)
    slow = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            case = make_case(rnd)
            folder = Path(tmp) / f"c{i}"
            folder.mkdir()
            t = time.perf_counter()
            cls, err = outcome(case, folder, limits)
            dt = time.perf_counter() - t
            if dt > 2:
                slow.append((dt, case.what))
            counts[cls] += 1
            if cls not in ("loaded", "error") or verbose:
                print(f"[{i}] {cls}: {case.what} quick={case.quick} set={case.overrides}")
                if err is not None:
                    text = traceback.format_exception(err) if cls == "crash" else \
                        traceback.format_exception_only(type(err), err)
                    print("   ", "".join(text).strip()[-1500:])
    for dt, what in sorted(slow, reverse=True)[:5]:
        print(f"slow: {dt:.1f} s {what}")
    return counts


def _tiny(path: Path) -> bytes:
    """The loaded study with a tiny budget: 300 embedded digits of 7 classes, one epoch per run
    (models' own epochs dropped), its models, sweeps and steps as they are."""
    import tomli_w

    from aelab.config import read_study_file

    d, _ = read_study_file(str(path))
    d.pop("quick", None)
    split = d.get("data", {}).get("split")
    d["data"] = {"dataset": "mnist-5k", "limit": 300, "classes": list(range(7)),
                 "split": split if isinstance(split, list) else [5, 1, 1]}
    d.setdefault("train", {})["epochs"] = 1
    for m in d["models"]:
        m.get("train", {}).pop("epochs", None)
    return tomli_w.dumps(d).encode()


def cli_campaign(n: int, seed: int, verbose: bool, benign: bool = False) -> collections.Counter:
    """``aelab show`` then ``aelab run --out`` on each file, in a fresh process each time."""
    counts: collections.Counter = collections.Counter()
    rnd = random.Random(seed + 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache"), "OMP_NUM_THREADS": "1",
               "AELAB_MAX_MEMORY_GB": "8"}

        def aelab(*args, cwd):
            return subprocess.run([sys.executable, "-m", "aelab.cli", *map(str, args)], capture_output=True,
                                  text=True, cwd=cwd, env=env, timeout=600)

        for i in range(n):
            case: Case = make_case(rnd, benign=benign)
            folder = Path(tmp) / f"c{i}"
            folder.mkdir()
            path = case.write(folder)
            flags = (["--quick"] if case.quick else []) + [a for o in case.overrides for a in ("--set", o)]
            show = aelab("show", path, *flags, cwd=folder)
            out = folder / "out"
            if show.returncode == 0:  # it loads: it must also run, here on a tiny budget
                path = folder / "tiny.toml"
                path.write_bytes(_tiny(folder / "study.toml"))
                flags = []
            before = set(_tree(folder))
            run = aelab("run", path, "--out", out, "--quiet", *flags, cwd=folder)
            new = set(_tree(folder)) - before
            inside = (str(out), str(out) + ".incomplete")
            stray = [p for p in new if not any(p == x or p.startswith(x + os.sep) for x in inside)]
            lines = [x for x in show.stderr.splitlines() if x.strip()]
            if stray:
                cls = "outside"
            elif show.returncode == 0:
                # A study that loads must train to the end (exit 0); anything else after it
                # loaded is a late failure, counted on its own.
                cls = "loaded" if run.returncode == 0 else "late"
            elif show.returncode == 2 and len(lines) == 1 and lines[0].startswith("aelab: ") and not new \
                    and run.returncode == 2:
                cls = "error"
            else:
                cls = "unclean" if show.returncode == 2 else "crash"
            counts[cls] += 1
            if cls not in ("loaded", "error") or verbose:
                print(f"[cli {i}] {cls}: {case.what} show={show.returncode} run={run.returncode} "
                      f"stray={sorted(stray)[:3]}", flush=True)
                print("    show:", show.stderr.strip()[-400:])
                print("    run:", run.stderr.strip()[-400:], flush=True)
    return counts


def _report(title: str, counts: collections.Counter) -> None:
    total = sum(counts.values())
    clean = counts["loaded"] + counts["error"]
    print(f"{title}: {total} files; " + ", ".join(f"{k} {counts[k]}" for k in
          ("loaded", "error", "late", "unclean", "crash", "outside")) +
          f"; clean {100 * clean / max(total, 1):.1f}%")


def folder_campaign(n: int, seed: int, verbose: bool) -> collections.Counter:
    """Mutated copies of one finished run folder given to report, compare, load_run or --resume
    (tests/hostile_folders.py): each must be ok or one sentence, read and write nothing outside."""
    from tests.hostile_folders import attack
    from tests.test_hostile_folders import TINY
    from typer.testing import CliRunner

    from aelab.cli import app

    counts: collections.Counter = collections.Counter()
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tiny.toml").write_text(TINY)
        finished = Path(tmp) / "finished"
        result = CliRunner().invoke(app, ["run", str(Path(tmp) / "tiny.toml"), "--out", str(finished), "--quiet"])
        assert result.exit_code == 0, result.stderr
        for i in range(n):
            work = Path(tmp) / f"a{i}"
            work.mkdir()
            cls, what = attack(finished, work, rnd, seconds=60)
            counts[cls] += 1
            if cls not in ("ok", "error") or verbose:
                print(f"[{i}] {cls}: {what}")
            shutil.rmtree(work, ignore_errors=True)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="study files through load_study")
    ap.add_argument("--cli", type=int, default=0, help="study files through `aelab show` and `aelab run`")
    ap.add_argument("--folders", type=int, default=0, help="mutated run folders through report, compare, "
                    "load_run and --resume")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--benign", action="store_true", help="at the CLI, only changes a careful user "
                    "makes: most such studies load, and each must then run to the end")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t = time.perf_counter()
    counts = campaign(args.n, args.seed, args.verbose)
    _report("load_study", counts)
    print(f"  ({time.perf_counter() - t:.0f} s)")
    if args.cli:
        t = time.perf_counter()
        _report("CLI" + (" (benign)" if args.benign else ""),
                cli_campaign(args.cli, args.seed, args.verbose, args.benign))
        print(f"  ({time.perf_counter() - t:.0f} s)")
    if args.folders:
        t = time.perf_counter()
        counts = folder_campaign(args.folders, args.seed, args.verbose)
        print(f"run folders: {sum(counts.values())}; " + ", ".join(f"{k} {counts[k]}" for k in
              ("ok", "error", "unclean", "crash", "outside", "leak", "hang")) + f" ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
