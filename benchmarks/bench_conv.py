"""Epoch time of aelab's fit against a plain PyTorch loop of the same model, in the same run.

The plain loop is what a tutorial writes: the model as Keras lists it (nn.Upsample then
nn.Conv2d, ReLUs that are not in place), a DataLoader over a TensorDataset (shuffled), a sigmoid
output with nn.BCELoss, torch.optim.Adam over model.parameters(). Both loops train the same
function from the same initial weights on the same images at the same batch size.

    python benchmarks/bench_conv.py                       # conv, vae, denoising-conv on 60,000 images
    python benchmarks/bench_conv.py --images 6000 --epochs 2 --models conv

Prints the median seconds per epoch of each loop and the ratio plain / aelab (> 1: aelab faster).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from aelab.models import create_model
from aelab.train import TrainConfig, add_noise, fit


def tutorial_twin(model):
    """A copy of ``model`` written as a tutorial would: each fused UpConv2d back to nn.Upsample +
    nn.Conv2d with the same weights, and ReLUs that allocate their output."""
    from aelab.models.conv import UpConv2d

    twin = copy.deepcopy(model)
    for seq in (twin.encoder, twin.decoder):
        for i, layer in enumerate(seq):
            if isinstance(layer, UpConv2d):
                conv = nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1)
                conv.load_state_dict(layer.state_dict())
                seq[i] = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv)
            elif isinstance(layer, nn.ReLU):
                seq[i] = nn.ReLU()
    return twin


def plain_loss(name: str, model, xb: torch.Tensor, bce: nn.Module) -> torch.Tensor:
    """The loss as a plain loop computes it: probabilities, then nn.BCELoss."""
    if name == "vae":
        head = model.encoder[-1]
        h = model.encoder[:-1](xb)
        mean, log_var = head.mean(h), head.log_var(h)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        out = torch.sigmoid(model.decoder(z))
        recon = nn.functional.binary_cross_entropy(out, xb, reduction="sum") / len(xb)
        kl = -0.5 * torch.sum(1 + log_var - mean.square() - log_var.exp()) / len(xb)
        return recon + kl
    inp = add_noise(xb, 0.5) if name == "denoising-conv" else xb
    return bce(torch.sigmoid(model.decoder(model.encoder(inp))), xb)


def plain_epochs(name: str, model, x: torch.Tensor, epochs: int, batch_size: int, device) -> list[float]:
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=batch_size,
                                         shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bce = nn.BCELoss()
    model.to(device).train()
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for (xb,) in loader:
            xb = xb.to(device)
            opt.zero_grad()
            loss = plain_loss(name, model, xb, bce)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def aelab_epochs(name: str, model, x: torch.Tensor, epochs: int, batch_size: int, device) -> list[float]:
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="adam", device=str(device),
                      input_noise=0.5 if name == "denoising-conv" else 0.0)
    hist = fit(model, {"train": x}, cfg)
    return [e["seconds"] for e in hist.epochs]


def load_images(n: int) -> torch.Tensor:
    from aelab.datasets import load_dataset

    try:
        x = load_dataset("fashion-mnist", part="train").x
        source = "Fashion-MNIST training images"
    except Exception as err:  # benchmark on random pixels rather than not at all
        print(f"Fashion-MNIST not found ({err}); using uniform random images")
        x, source = torch.rand(60_000, 1, 28, 28), "random images"
    print(f"{min(n, len(x)):,} {source}")
    return x[:n].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=60_000)
    ap.add_argument("--epochs", type=int, default=3, help="per loop; the first includes warm-up")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--models", default="conv,vae,denoising-conv")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = load_images(args.images)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"batch {args.batch_size}, {args.epochs} epochs per loop; median seconds per epoch")
    print(f"{'model':<16}{'plain s/epoch':>15}{'aelab s/epoch':>15}{'speed-up':>10}")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = create_model(name, tuple(x.shape[1:]))
        twin = tutorial_twin(model)  # same initial weights for both loops
        with torch.no_grad():  # the same function, or the comparison means nothing
            torch.testing.assert_close(twin(x[:16]), model(x[:16]), rtol=1e-4, atol=1e-5)
        torch.manual_seed(0)
        plain = statistics.median(plain_epochs(name, twin, x, args.epochs, args.batch_size, device))
        torch.manual_seed(0)
        ours = statistics.median(aelab_epochs(name, model, x, args.epochs, args.batch_size, device))
        print(f"{name:<16}{plain:>15.3f}{ours:>15.3f}{plain / ours:>9.2f}×", flush=True)


if __name__ == "__main__":
    main()
