"""What every figure shares: user text drawn literally, image grids, and running a model.

Text that comes from users (run names, titles, class names) goes through :func:`plain`, so a
``$`` in a name is drawn as a dollar sign, never parsed as mathtext (``$\\alpha^$`` would
otherwise stop the figure from drawing).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def plain(text) -> str:
    """User text drawn literally: ``$`` escaped so matplotlib never reads it as mathtext."""
    return str(text).replace("$", r"\$")




def fold(text: str, width: int) -> str:
    """Long text in lines of at most ``width`` characters, broken after a space, "-", "/", "_"
    or "." where possible, so a long run name does not run into the next panel."""
    lines = [""]
    for tok in re.findall(r"[^\s/_.-]*[\s/_.-]|[^\s/_.-]+", text):
        while len(tok) > width:
            room = width - len(lines[-1])
            lines[-1] += tok[:room]
            tok = tok[room:]
            lines.append("")
        if len(lines[-1]) + len(tok.rstrip()) > width:
            lines.append("")
        lines[-1] += tok
    return "\n".join(line.rstrip() for line in lines if line.strip())


def literal(*artists) -> None:
    """No LaTeX for user text even when rcParams["text.usetex"] is on."""
    for a in artists:
        a.set_usetex(False)



def image_grid(rows: list[torch.Tensor], row_labels: list[str], title: str = ""):
    """Rows of (n, C, H, W) or (n, H, W) images in [0, 1] as a grid with a label per row."""
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.1 + 0.4), squeeze=False)
    for r, (imgs, label) in enumerate(zip(rows, row_labels)):
        imgs = torch.as_tensor(imgs)
        if imgs.dim() == 3:
            imgs = imgs[:, None]
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                img = imgs[c].detach().float().cpu().clamp(0, 1)
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="binary", vmin=0, vmax=1)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
        literal(axes[r, 0].set_title(plain(label), loc="left", fontsize=9))
    if title:
        literal(fig.suptitle(plain(title)))
    fig.tight_layout()
    return fig


def as_images(images, input_shape: Sequence[int] | None = None) -> torch.Tensor:
    """Images as a float (N, C, H, W) tensor, from what a notebook has at hand.

    ``images``: a tensor, a NumPy array or a ``data.Dataset`` (its ``.x``), shaped (N, H*W),
    (N, H, W), (N, C, H, W) or (N, H, W, C); uint8 pixels are divided by 255. With
    ``input_shape`` (C, H, W), e.g. a model's, the images are reshaped to it.
    """
    x = getattr(images, "x", images)
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    x = x.detach().cpu()
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if input_shape is None:
        if x.dim() == 2:  # (N, H*W): square grayscale images
            side = math.isqrt(x.shape[1])
            if side * side != x.shape[1]:
                raise ValueError(f"Cannot tell the image shape of rows of {x.shape[1]} values; "
                                 "pass input_shape=(C, H, W).")
            return x.reshape(len(x), 1, side, side)
        return x[:, None] if x.dim() == 3 else x
    shape = tuple(int(s) for s in input_shape)
    if tuple(x.shape) == shape or (len(shape) == 3 and tuple(x.shape) == shape[1:]):
        x = x[None]  # one image
    if tuple(x.shape[1:]) == shape:
        return x
    if x.dim() == 4 and len(shape) == 3 and tuple(x.shape[1:]) == (shape[1], shape[2], shape[0]):
        return x.permute(0, 3, 1, 2).contiguous()  # channels last
    if x.dim() >= 2 and x[0].numel() == math.prod(shape):
        return x.reshape(len(x), *shape)
    raise ValueError(f"Images of shape {tuple(x.shape[1:])} do not fit the model's input shape "
                     f"{shape}; pass (N, {math.prod(shape)}), (N, H, W) or (N, C, H, W) images.")



def predict(model, fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(model, x)`` in eval mode without autograd, on the model's device, back on the CPU."""
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = fn(model, x.to(p.device, p.dtype)).float().cpu()
    model.train(was_training)
    return out

