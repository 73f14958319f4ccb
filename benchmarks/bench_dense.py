"""Seconds per epoch of the stacked autoencoder on the fashion-shoes training set (15,000 images):
aelab's fit against a plain PyTorch loop (DataLoader + torch.optim.NAdam + BCELoss) in the same
run, at batch 32 and 256; then the start-up time of `aelab --help`.

    python benchmarks/bench_dense.py [--epochs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from aelab.datasets import filter_classes, load_dataset, stratified_split
from aelab.models import create_model
from aelab.train import TrainConfig, fit


def shoes():
    try:
        ds = filter_classes(load_dataset("fashion-mnist", download=False), ["Sandal", "Sneaker", "Ankle boot"])
    except Exception as err:  # no Fashion-MNIST here: same-size stand-in from the embedded digits
        print(f"(Fashion-MNIST unavailable: {err}; using 3 copies of mnist-5k instead)")
        d = load_dataset("mnist-5k")
        d.x, d.y = d.x.repeat(3, 1, 1, 1), d.y.repeat(3)
        ds = d
    return stratified_split(ds, [5, 1, 1], seed=42)


def plain_loop(x_train, x_val, batch_size, epochs):
    """What a user would write: DataLoader, NAdam, nn.BCELoss on the sigmoid output."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 50), nn.ReLU(),
                          nn.Linear(50, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
    opt = torch.optim.NAdam(model.parameters(), lr=1e-4, eps=1e-7)
    loss_fn = nn.BCELoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train), batch_size=batch_size, shuffle=True)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for (xb,) in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), xb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(x_val), batch_size):
                loss_fn(model(x_val[i : i + batch_size]), x_val[i : i + batch_size])
        times.append(time.perf_counter() - t0)
    return times


def aelab_loop(splits, batch_size, epochs):
    torch.manual_seed(0)
    model = create_model("stacked")
    hist = fit(model, splits, TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=1e-4))
    return hist.column("seconds")


def help_time(repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aelab.cli", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = shoes()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, train {len(splits['train'])}, "
          f"val {len(splits['val'])}, median of {args.epochs} epochs (first epoch included)")
    print(f"{'batch':>6} {'plain s/epoch':>14} {'aelab s/epoch':>14} {'speed-up':>9}")
    for bs in (32, 256):
        plain = statistics.median(plain_loop(splits["train"].x, splits["val"].x, bs, args.epochs))
        ours = statistics.median(aelab_loop(splits, bs, args.epochs))
        print(f"{bs:>6} {plain:>14.3f} {ours:>14.3f} {plain / ours:>8.2f}x")
    print(f"aelab --help: {help_time():.3f} s (median of 5, including Python start-up)")


if __name__ == "__main__":
    main()
