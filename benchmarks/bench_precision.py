"""fp32 against bf16 autocast (``train.precision = "bf16"``), and flushing denormals, in one run:

- the conv model's epoch time (Keras blog conv autoencoder, Fashion-MNIST, batch 128);
- the loss difference bf16 causes after a few epochs on fashion-shoes (stacked model, Nadam
  1e-4, BCE, batch 256) and conv-lr (transposed-conv model, SSE, Adam 0.01, batch 64);
- the conv epoch time and losses with ``torch.set_flush_denormal(True)``.

    python benchmarks/bench_precision.py [--device cpu|cuda] [--epochs 3] [--limit 20000]

bf16 is fast where the hardware has it (AVX-512-BF16 or AMX on CPUs, tensor cores on GPUs); on
a CPU without them PyTorch emulates it and it is slower. fp32 stays the default: Keras-exact.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from aelab.datasets import filter_classes, limit_per_class, load_dataset, stratified_split  # noqa: E402
from aelab.models import create_model  # noqa: E402
from aelab.train import TrainConfig, fit  # noqa: E402


def train(model_name, params, splits, cfg: TrainConfig):
    model = create_model(model_name, seed=cfg.seed, **params)
    hist = fit(model, splits, cfg)
    return statistics.median(hist.column("seconds")[1:] or hist.column("seconds")), hist.last["val_loss"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=20000, help="Fashion-MNIST images for the conv timing")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    if args.device == "cpu":
        print(f"machine: {describe()}; {torch.get_num_threads()} threads")
    else:
        print(f"device: {torch.cuda.get_device_name()}; host {describe()}")
    fashion = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)
    conv_splits = stratified_split(limit_per_class(fashion, args.limit, seed=0), [5, 1], seed=0)
    conv_splits = {"train": conv_splits["train"], "val": conv_splits["test"]}
    shoes = stratified_split(filter_classes(fashion, ["Sandal", "Sneaker", "Ankle boot"]), [5, 1, 1], seed=42)
    lr_splits = stratified_split(limit_per_class(fashion, args.limit, seed=1), [5, 1], seed=1)
    lr_splits = {"train": lr_splits["train"], "val": lr_splits["test"]}
    e = args.epochs

    def cfg(**kw):
        return TrainConfig(epochs=e, device=args.device, seed=0, **kw)

    rows = []
    conv = {p: train("conv", {}, conv_splits, cfg(batch_size=128, optimizer="adadelta-original", precision=p))
            for p in ("fp32", "bf16")}
    rows.append(("conv s/epoch (batch 128)", conv["fp32"][0], conv["bf16"][0]))
    rows.append(("conv val BCE", conv["fp32"][1], conv["bf16"][1]))
    st = {p: train("stacked", {}, shoes, cfg(batch_size=256, learning_rate=1e-4, precision=p)) for p in ("fp32", "bf16")}
    rows.append(("fashion-shoes stacked val BCE", st["fp32"][1], st["bf16"][1]))
    ct = {p: train("conv-transposed", {"loss": "sse"}, lr_splits,
                   cfg(batch_size=64, optimizer="adam", learning_rate=0.01, precision=p)) for p in ("fp32", "bf16")}
    rows.append(("conv-lr (lr 0.01) val SSE", ct["fp32"][1], ct["bf16"][1]))
    print(f"\n{e} epochs each, {len(conv_splits['train']):,} conv training images, {args.device}")
    print(f"{'':<32}{'fp32':>12}{'bf16':>12}{'bf16 - fp32':>14}{'ratio':>8}")
    for name, a, b in rows:
        print(f"{name:<32}{a:>12.4f}{b:>12.4f}{b - a:>14.4f}{b / a:>8.2f}")

    if args.device == "cpu":
        flush = {}
        for on in (False, True):
            torch.set_flush_denormal(on)
            flush[on] = train("conv", {}, conv_splits, cfg(batch_size=128, optimizer="adadelta-original"))
        torch.set_flush_denormal(False)
        print(f"\nflush denormals: conv s/epoch {flush[False][0]:.3f} -> {flush[True][0]:.3f} "
              f"({flush[True][0] / flush[False][0]:.2f}x), val BCE difference "
              f"{abs(flush[True][1] - flush[False][1]):.2e}")


if __name__ == "__main__":
    main()
