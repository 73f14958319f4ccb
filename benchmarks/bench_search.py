"""What ASHA pruning saves on search-shoes (SPEC 1.8): the search with ASHA, then the same 30
sampled configurations trained to the end without pruning, in one run on one machine.

    python benchmarks/bench_search.py [--quick] [--jobs 1] [--threads N]

With TPE the configurations sampled depend on which trials were pruned, so "the same
configurations" are those the ASHA search sampled, read from its folder and trained again as a
plain study (no sampler, no pruner). Prints both wall times, their ratio, the best validation
BCE of each and the difference. ``--quick`` uses the study's [quick] table (4 trials, 3 epochs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from aelab.config import load_study  # noqa: E402
from aelab.runner import run_study  # noqa: E402
from aelab.search import load_search  # noqa: E402


def timed(study, out: Path, **options) -> tuple[float, Path]:
    start = time.perf_counter()
    folder = run_study(study, out=out, quiet=True, **options)
    return time.perf_counter() - start, folder


def sampled(study, folder: Path) -> list:
    """The configurations the search sampled, as plain runs (plan.RunSpec) of every trial."""
    plan = study.search
    return [plan.spec(f"config-{t.number:03d}", {d.name: d.decode(t.params[d.name]) for d in plan.dimensions})
            for t in load_search(folder).get_trials(deepcopy=False)]


def best_val(folder: Path, names: str) -> float:
    runs = json.loads((folder / "metrics.json").read_text())["runs"]
    values = [r["val_loss"] for r in runs if r["name"].startswith(names) and r["status"] in ("completed", "stopped_early")
              and r["val_loss"] is not None]
    return min(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the study's [quick] budget")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    options = {"jobs": args.jobs, "threads": args.threads}
    study = load_study("search-shoes", quick=args.quick)
    study = dataclasses.replace(study, search=dataclasses.replace(
        study.search, config=dataclasses.replace(study.search.config, confirm_seeds=[])))  # the search only
    with tempfile.TemporaryDirectory() as tmp:
        t_asha, asha = timed(study, Path(tmp) / "asha", **options)
        runs = sampled(study, asha)
        plain = dataclasses.replace(study, search=None, runs=runs)
        t_full, full = timed(plain, Path(tmp) / "full", **options)
        best_asha, best_full = best_val(asha, "trial-"), best_val(full, "config-")
    print(f"search-shoes{' --quick' if args.quick else ''}: {len(runs)} configurations, jobs {args.jobs}")
    print(f"  ASHA search:            {t_asha:8.1f} s, best val BCE {best_asha:.4f}")
    print(f"  same configs, no prune: {t_full:8.1f} s, best val BCE {best_full:.4f}")
    print(f"  time ratio (no prune / ASHA): {t_full / t_asha:.2f}x; best val BCE difference (ASHA - full): "
          f"{best_asha - best_full:+.4f}")
    print(f"  machine: {describe()}")


if __name__ == "__main__":
    main()
