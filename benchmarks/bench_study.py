"""Wall time of a whole study, serial against --jobs 2 and --executor ray, in one run on one
machine, and whether every run's numbers are identical (losses to 1e-6).

    python benchmarks/bench_study.py [--study fashion-shoes] [--quick] [--skip-ray]

Each variant is the real command line (`aelab run STUDY --out DIR --quiet ...`) in a child
process, so start-up (imports, data, worker processes, Ray) is part of the figure, as a user
would see it. Runs of the study are independent units; on 2 cores at batch 32 one PyTorch
thread is as fast as two, so two runs at a time, one thread each, should nearly halve the time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402


def run(study: str, out: Path, extra: list[str], quick: bool) -> float:
    cmd = [sys.executable, "-m", "aelab.cli", "run", study, "--out", str(out), "--quiet", *extra]
    if quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def losses(folder: Path) -> dict:
    runs = json.loads((folder / "metrics.json").read_text())["runs"]
    return {r["name"]: (r["status"], r["epochs_run"], [e.get("val_loss") for e in r.get("history", [])], r.get("test_loss"))
            for r in runs if "history" in r}


def same(a: dict, b: dict) -> str:
    if a.keys() != b.keys():
        return "different runs"
    worst = 0.0
    for name in a:
        (sa, ea, va, ta), (sb, eb, vb, tb) = a[name], b[name]
        if (sa, ea) != (sb, eb):
            return f"{name}: {sa}/{ea} epochs vs {sb}/{eb}"
        worst = max([worst, abs((ta or 0) - (tb or 0)), *(abs(x - y) for x, y in zip(va, vb))])
    return "identical" if worst <= 1e-6 else f"largest loss difference {worst:.2e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="fashion-shoes")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    variants = [("serial", []), ("--jobs 2", ["--jobs", "2"])]
    if not args.skip_ray:
        variants.append(("--executor ray", ["--executor", "ray"]))
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, extra in variants:
            out = Path(tmp) / name.strip("-").replace(" ", "-")
            results[name] = (run(args.study, out, extra, args.quick), losses(out))
            print(f"{name:<16} {results[name][0]:7.1f} s", flush=True)
        base_time, base = results["serial"]
        print(f"\n{args.study}{' --quick' if args.quick else ''}: wall time against serial ({base_time:.1f} s)")
        for name, (seconds, res) in results.items():
            print(f"{name:<16} {seconds:7.1f} s  {seconds / base_time:5.2f} x serial  {same(base, res)}")


if __name__ == "__main__":
    main()
