"""Vectorized trials and the training step against a plain loop, each figure a ratio from one run.

    python benchmarks/bench_vectorize.py [--device cpu|cuda] [--threads N] [--parts a,b,c] [--quick]

(a) fashion-shoes with ``seed = [0, 1, 2, 3, 4]`` (20 runs) as real command lines: ``vectorize =
    "off"`` vs ``"on"`` vs ``"auto"`` vs ``--jobs 2`` (off), wall time and whether every run's
    losses agree with the serial ones (to 1e-5, the stated tolerance of stacking);
(b) one run's seconds per epoch against ``shared/baselines/torch_plain_gpu.py`` (DataLoader,
    torch.optim, ``loss.item()`` per step), on the same 60,000 Fashion-MNIST images with the
    10,000 test images as validation: the stacked model at batch 32 and 256, the blog's conv
    model at batch 128; plus five seeds of the stacked model per epoch, stacked vs one by one;
(c) keras-tour's models on full MNIST, wall time (GPU only: hours on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

BASELINE = Path(__file__).resolve().parents[2] / "shared" / "baselines" / "torch_plain_gpu.py"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def aelab(args: list[str], out: Path, threads: int) -> float:
    cmd = [sys.executable, "-m", "aelab.cli", "run", *args, "--out", str(out), "--quiet", "--threads", str(threads)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def histories(folder: Path) -> dict:
    runs = json.loads((folder / "metrics.json").read_text())["runs"]
    return {r["name"]: (r["status"], [(e["train_loss"], e.get("val_loss")) for e in r["history"]]) for r in runs}


def agree(a: dict, b: dict) -> str:
    worst = 0.0
    for name, (status, hist) in a.items():
        other_status, other = b[name]
        if status != other_status or len(hist) != len(other):
            return f"{name}: {status}/{len(hist)} epochs vs {other_status}/{len(other)}"
        worst = max([worst, *(abs(x - y) for e, f in zip(hist, other) for x, y in zip(e, f) if x is not None)])
    return f"agree (largest difference {worst:.1e})" if worst <= 1e-5 else f"largest difference {worst:.1e}"


def part_a(args, tmp: Path) -> None:
    study = ["fashion-shoes", "--set", "seed=[0, 1, 2, 3, 4]", "--set", f"train.device={args.device}"]
    if args.quick:
        study += ["--quick"]
    variants = [("off", ["--set", "train.vectorize=off"]), ("on", ["--set", "train.vectorize=on"]),
                ("auto", []), ("--jobs 2 (off)", ["--set", "train.vectorize=off", "--jobs", "2"])]
    results = {}
    for name, extra in variants:
        threads = max(1, args.threads // 2) if "jobs" in name else args.threads
        out = tmp / re.sub(r"\W+", "-", name)
        results[name] = (aelab(study + extra, out, threads), histories(out))
        print(f"  {name:<16} {results[name][0]:7.1f} s", flush=True)
    base_time, base = results["off"]
    print(f"(a) fashion-shoes, 20 runs{' (--quick)' if args.quick else ''}: wall time against vectorize=off")
    for name, (seconds, hist) in results.items():
        print(f"  {name:<16} {seconds:7.1f} s  {seconds / base_time:5.2f} x off   {agree(base, hist)}")


def seconds_per_epoch(history: list[dict]) -> float:
    later = [e["seconds"] for e in history[1:]] or [history[0]["seconds"]]
    return statistics.median(later)


def aelab_epoch(model: str, batch: int, device: str, epochs: int, seeds: int = 1, stacked: bool = False) -> float:
    import torch

    from aelab.datasets import load_dataset
    from aelab.models import create_model
    from aelab.stacked import fit_stacked
    from aelab.train import TrainConfig, fit

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    data = {"train": train, "val": test}
    opt = ("adam", None) if model == "conv" else ("nadam", 1e-4)
    configs = [TrainConfig(epochs=epochs, batch_size=batch, optimizer=opt[0], learning_rate=opt[1], seed=s,
                           device=device) for s in range(seeds)]
    models = [create_model(model, (1, 28, 28), seed=s) for s in range(seeds)]
    if stacked:
        return seconds_per_epoch(fit_stacked(models, data, configs)[0].epochs)
    total = sum(seconds_per_epoch(fit(m, data, c).epochs) for m, c in zip(models, configs))
    if device == "cuda":
        torch.cuda.synchronize()
    return total


def plain_epoch(model: str, batch: int, device: str, epochs: int, threads: int) -> float:
    out = subprocess.run([sys.executable, str(BASELINE), "--data", str(FASHION), "--model", model, "--batch",
                          str(batch), "--epochs", str(epochs), "--device", device], check=True,
                         capture_output=True, text=True, env={"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}).stdout
    return statistics.median([float(s) for s in re.findall(r": ([\d.]+) s,", out)][1:])


def part_b(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    epochs = 2 if args.quick else 3
    print(f"(b) seconds per epoch, 60,000 Fashion-MNIST images, validation on 10,000, {args.device}:")
    for model, batch in (("stacked", 32), ("stacked", 256), ("conv", 128)):
        ours, plain = aelab_epoch(model, batch, args.device, epochs), plain_epoch(model, batch, args.device, epochs, args.threads)
        print(f"  {model:<8} batch {batch:<4} aelab {ours:6.2f} s   plain loop {plain:6.2f} s   {plain / ours:5.2f} x", flush=True)
    alone = aelab_epoch("stacked", 32, args.device, 2, seeds=5)
    together = aelab_epoch("stacked", 32, args.device, 2, seeds=5, stacked=True)
    print(f"  5 seeds of stacked, batch 32: one by one {alone:6.2f} s per epoch, stacked {together:6.2f} s "
          f"({alone / together:5.2f} x)")


def part_c(args, tmp: Path) -> None:
    if args.device != "cuda":
        print("(c) keras-tour: skipped on the CPU (about an hour on 2 cores); run with --device cuda")
        return
    seconds = aelab(["keras-tour", "--set", "train.device=cuda", "--jobs", "4"], tmp / "tour", args.threads)
    print(f"(c) keras-tour on {args.device}, --jobs 4: {seconds:.0f} s wall")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"machine: {describe()}; {args.threads} threads; device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            {"a": lambda: part_a(args, Path(tmp)), "b": lambda: part_b(args), "c": lambda: part_c(args, Path(tmp))}[part]()


if __name__ == "__main__":
    main()
