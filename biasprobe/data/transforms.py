"""Resizing, cropping and tensor conversion of 8-bit RGB images (docs/protocols.md sections 1, 4).

Every resize is Pillow bilinear on the 8-bit image; every rounding is half up.

A resize that would make an image larger than ``MAX_RESIZED_PIXELS`` (64 megapixels) is refused
with an ``ImageLoadError`` before any pixel is allocated: a 1 x 20000 strip resized so its
shorter side is 256 would be 256 x 5,120,000 pixels. The stages skip such an image with the
reason (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from biasprobe.core.errors import ImageLoadError
from biasprobe.core.rounding import rnd

__all__ = [
    "MAX_RESIZED_PIXELS",
    "centre_crop",
    "embed_view",
    "normalise",
    "normalise_",
    "resize_longer",
    "resize_shorter",
    "resize_to",
    "to_float_array",
]

MAX_RESIZED_PIXELS = 64_000_000


def _resize(img: Image.Image, size: tuple[int, int], rule: str) -> Image.Image:
    w, h = size
    if w * h > MAX_RESIZED_PIXELS:
        raise ImageLoadError(
            f"image of {img.size[0]} x {img.size[1]} pixels resized so its {rule} would be {w} x {h} "
            f"({w * h / 1e6:.1f} megapixels, over the {MAX_RESIZED_PIXELS / 1e6:.0f}-megapixel limit): too elongated to measure"
        )
    return img.resize(size, Image.Resampling.BILINEAR)


def resize_to(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to exactly ``size = (w, h)`` (Pillow bilinear; refused over 64 megapixels)."""
    return _resize(img, size, f"size is {size[0]} x {size[1]}")


def resize_shorter(img: Image.Image, length: int) -> Image.Image:
    """Resize so the shorter side becomes ``length``; the other side ``rnd(other * L / shorter)``."""
    w, h = img.size
    if w <= h:
        size = (length, rnd(h * length / w))
    else:
        size = (rnd(w * length / h), length)
    return _resize(img, size, f"shorter side is {length}")


def resize_longer(img: Image.Image, length: int) -> Image.Image:
    """Resize so the longer side becomes ``length``; the other side ``rnd(other * L / longer)``."""
    w, h = img.size
    if w >= h:
        size = (length, max(1, rnd(h * length / w)))
    else:
        size = (max(1, rnd(w * length / h)), length)
    return _resize(img, size, f"longer side is {length}")


def centre_crop(img: Image.Image, size: int) -> Image.Image:
    """Crop ``size x size`` at ``left = (W - B) // 2``, ``top = (H - B) // 2``."""
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_float_array(img: Image.Image) -> np.ndarray:
    """8-bit RGB image -> float32 array (3, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def normalise(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """``(x - mean) / std`` per channel on a (..., 3, H, W) float tensor in [0, 1]."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def normalise_(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``normalise`` in place (the same two operations per value), returning ``x``."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return x.sub_(m).div_(s)


def embed_view(img: Image.Image, *, input_size: int, crop_pct: float) -> np.ndarray:
    """The embedding preprocessing of section 4, before normalisation: float32 (3, S, S).

    Resize so the shorter side is ``rnd(S / crop_pct)``, then centre-crop ``S x S``.
    """
    resized = resize_shorter(img, rnd(input_size / crop_pct))
    return to_float_array(centre_crop(resized, input_size))
