"""Folders of PNG/JPEG images: one subfolder per class (labels in sorted order), or unlabelled.

Each image's size is read from its header and checked against the first image's and the memory
budget before it is decoded, so a 100000×100000 PNG costs nothing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ._base import Dataset, scaled
from ._files import check_size, to_nchw


def _imread(f: Path, n: int, first: tuple[Path, tuple] | None) -> tuple[np.ndarray, int]:
    """One image as float32 (H, W) or (H, W, 3) in [0, 1] and its largest stored value; alpha is dropped. Pillow is always
    there (matplotlib requires it). The size in the header is checked before decoding, against
    the first image's and the memory budget for ``n`` images, so a 100000×100000 claim costs
    nothing; Pillow's own decompression-bomb guard is an error too, not a warning."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                w, h = im.size
                if first is not None and (h, w) != first[1][:2]:
                    raise DataError(f"Image {f} is {w}×{h} pixels but {first[0]} is "
                                    f"{first[1][1]}×{first[1][0]}; give all images the same size.")
                bands = min(len(im.getbands()), 3)  # alpha is dropped
                check_size(2 * n * w * h * bands * 4, f, f"{n:,} images of {w}×{h} pixels")
                if im.mode not in ("L", "RGB", "I;16"):
                    colour = im.mode in ("RGBA", "RGBX", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA")
                    im = im.convert("RGB" if colour else "L")
                img = np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise DataError(f"Image {f} cannot be read ({err}); remove or replace it.") from None
    top = 65535 if img.dtype == np.uint16 else 255
    return img.astype(np.float32) / top, top


def read_image_folder(path: Path) -> Dataset:
    """The images, labels and class names of a folder of PNG/JPEG images, one subfolder per class
    (labels in sorted subfolder order), or images directly in it (unlabelled)."""
    try:
        classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        groups = [(c.name, sorted(c.iterdir())) for c in classes] or [("", sorted(path.iterdir()))]
    except OSError as err:  # an unreadable subfolder, a folder removed meanwhile
        raise DataError(f"Folder {err.filename or path} cannot be read ({err.strerror or err}); "
                        "make it readable or point data.dataset elsewhere.") from None
    files = [(label, f) for label, (_, fs) in enumerate(groups) for f in fs
             if f.suffix.lower() in (".png", ".jpg", ".jpeg") and not f.name.startswith(".")]
    if not files:
        raise DataError(f"Folder {path} holds no PNG or JPEG images; put them in one subfolder per class.")
    images, tops, first = [], set(), None
    for _, f in files:
        img, top = _imread(f, len(files), first)
        tops.add(top)
        if first is None:
            first = (f, img.shape)
        elif img.shape != first[1]:
            raise DataError(f"Image {f} has shape {img.shape} but {first[0]} has {first[1]}; "
                            "give all images the same size and colour mode.")
        images.append(img)
    x = to_nchw(np.stack(images), path)
    y = torch.tensor([label for label, _ in files], dtype=torch.long) if classes else None
    scaling = scaled(tops.pop()) if len(tops) == 1 else (
        "8-bit and 16-bit pixel values scaled to [0, 1] (divided by 255 and 65535)")
    return Dataset(path.resolve().name or str(path), x.contiguous(), y,
                   [g[0] for g in groups] if classes else [], str(path), scaling)
