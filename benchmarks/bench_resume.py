"""What the per-epoch resume state costs: fashion-shoes epoch time of the stacked model with and
without it, at batch 32 and 256, measured alternately in one run.

    python benchmarks/bench_resume.py [--epochs 4] [--threads 2]

"With" is what a study run does after every epoch: snapshot the model, the optimizer state,
the generators and early stopping (train.snapshot), serialise it (runs.resume_bytes) and write
it atomically into the run folder. Goal: at most 3% at batch 256.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402
from bench_dense import shoes  # noqa: E402

from aelab.callbacks import LambdaCallback  # noqa: E402
from aelab.models import create_model  # noqa: E402
from aelab.runs.folder import atomic_write  # noqa: E402
from aelab.runs.states import resume_bytes  # noqa: E402
from aelab.train import EarlyStopping, TrainConfig, fit, snapshot  # noqa: E402


def epoch_times(splits, batch_size: int, epochs: int, folder: Path | None) -> list[float]:
    """Seconds per epoch, each including the resume state's save when ``folder`` is given."""
    times, last = [], [0.0]

    def save(state, record):
        atomic_write(folder / "state.safetensors", resume_bytes(snapshot(state)))

    cbs = [LambdaCallback(on_epoch_end=save)] if folder else []
    import time

    def tick(state, record):
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=1e-4, seed=0,
                      early_stopping=EarlyStopping(patience=50, min_delta=1e-2))
    model = create_model("stacked", seed=0)
    last[0] = time.perf_counter()
    fit(model, splits, cfg, [*cbs, LambdaCallback(on_epoch_end=tick)])
    return times[1:]  # the first epoch includes warm-up


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = shoes()
    print(f"machine: {describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fashion-shoes stacked model, train {len(splits['train']):,}, median of "
          f"{args.rounds} rounds x {args.epochs - 1} epochs (after the first), alternating")
    print(f"{'batch':>6} {'without s/epoch':>16} {'with s/epoch':>13} {'cost':>7}  state size")
    with tempfile.TemporaryDirectory() as tmp:
        for bs in (32, 256):
            without, with_ = [], []
            for _ in range(args.rounds):
                without += epoch_times(splits, bs, args.epochs, None)
                with_ += epoch_times(splits, bs, args.epochs, Path(tmp))
            a, b = statistics.median(without), statistics.median(with_)
            size = (Path(tmp) / "state.safetensors").stat().st_size / 2**20
            print(f"{bs:>6} {a:>16.3f} {b:>13.3f} {100 * (b - a) / a:>6.1f}%  {size:.1f} MB")


if __name__ == "__main__":
    main()
