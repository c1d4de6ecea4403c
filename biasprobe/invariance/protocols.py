"""Transformation protocols of docs/protocols.md section 2 and the paper presets of
docs/literature.md: the view builders of the protocols in ``biasprobe.invariance.catalogue``.

Each protocol turns one 8-bit RGB image into an ordered list of views ``x_0 .. x_T`` as a
uint8 tensor ``(T + 1, 3, S, S)`` (pixels before normalisation), plus, for canvas protocols,
the pasted rectangle of each view (the inpainting mask ``M``: geometry, not pixel values).
Views are built on tensors: one resize per image (``crop``, ``circular``, ``zhang``,
``black``, ``inpaint``) or one per scale step (``scale``), then slices, rolls and pastes.

The registry itself (names, descriptions, flags, definitions: ``get_protocol(name)``,
``list_protocols()``, ``parse_protocols("crop,black")``) is ``biasprobe.invariance.catalogue``,
which imports no torch; its names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from biasprobe.data.transforms import centre_crop, resize_longer, resize_shorter, resize_to
from biasprobe.invariance.catalogue import (
    AZULAY_CROP_MARGIN,
    AZULAY_PAIRS,
    MIN_SIDE,
    ZHANG_DIAGONAL_VIEWS,
    ZHANG_DRAW,
    ZHANG_MARGIN,
    Protocol,
    ProtocolParams,
    azulay_canvas_start,
    azulay_embed_size,
    azulay_scale_sides,
    get_protocol,
    list_protocols,
    parse_protocols,
    register_protocol,
    zhang_offsets,
)

__all__ = [
    "MIN_SIDE",
    "Protocol",
    "ProtocolParams",
    "Views",
    "azulay_crop_box",
    "build_views",
    "get_protocol",
    "list_protocols",
    "parse_protocols",
    "register_protocol",
    "torchvision_centre_crop",
    "torchvision_resize_shorter",
    "zhang_offsets",
]

@dataclass(frozen=True)
class Views:
    """The views of one image under one protocol."""

    pixels: torch.Tensor
    """uint8 (V, 3, S, S), pixel values before normalisation."""
    mask: torch.Tensor | None = None
    """bool (V, S, S): the pasted rectangle of each view (canvas protocols), else None."""


ViewBuilder = Callable[[Image.Image, str, ProtocolParams], Views]


def build_views(protocol: Protocol, img: Image.Image, image_id: str, params: ProtocolParams) -> Views:
    """The views of one image under ``protocol`` (``Protocol.build`` calls this)."""
    return _BUILDERS[protocol.name](img, image_id, params)


def _chw(img: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _crop_square(img: Image.Image, params: ProtocolParams) -> torch.Tensor:
    b = params.crop_size
    return _chw(centre_crop(resize_shorter(img, b), b))


def _windows(square: torch.Tensor, corners: Sequence[tuple[int, int]], size: int) -> torch.Tensor:
    """S x S windows of a (3, B, B) tensor at (top, left) corners -> (V, 3, S, S)."""
    return torch.stack([square[:, t : t + size, left : left + size] for t, left in corners])


def _pair_windows(square: torch.Tensor, pairs: np.ndarray, size: int) -> torch.Tensor:
    """The windows of (P, 4) pairs ``h1, w1, h2, w2``: views 2i and 2i + 1 at (h1, w1) and (h2, w2)."""
    corners = [corner for h1, w1, h2, w2 in pairs.tolist() for corner in ((h1, w1), (h2, w2))]
    return _windows(square, corners, size)


def _build_crop(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    # Diagonal windows as a strided view of the square: no copy, and only the (3, B, B)
    # square crosses from the worker to the main process (one copy, into the batch).
    return Views(_diagonal(_crop_square(img, params), 0, params.max_shift + 1, params.input_size))


def _build_zhang(img: Image.Image, image_id: str, params: ProtocolParams) -> Views:
    return Views(_pair_windows(_crop_square(img, params), zhang_offsets(image_id, params), params.input_size))


def _build_circular(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s = params.input_size
    crop = _chw(centre_crop(resize_shorter(img, s), s))
    return Views(torch.stack([torch.roll(crop, shifts=(t, t), dims=(1, 2)) for t in range(params.max_shift + 1)]))


def _canvas(n: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` black S x S views and their (empty) pasted-rectangle masks."""
    return torch.zeros((n, 3, s, s), dtype=torch.uint8), torch.zeros((n, s, s), dtype=torch.bool)


def _paste(pixels: torch.Tensor, mask: torch.Tensor, view: int, patch: torch.Tensor, x: int, y: int) -> None:
    _, h, w = patch.shape
    pixels[view, :, y : y + h, x : x + w] = patch
    mask[view, y : y + h, x : x + w] = True


def _build_black(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s, e, n = params.input_size, params.embed_size, params.max_shift + 1
    patch = _chw(resize_longer(img, e))
    _, h, w = patch.shape
    o = params.canvas_offset
    pixels, mask = _canvas(n, s)
    for t in range(n):
        _paste(pixels, mask, t, patch, o + t + (e - w) // 2, o + t + (e - h) // 2)
    return Views(pixels, mask)


def _build_scale(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s, e, n = params.input_size, params.embed_size, params.max_shift + 1
    pixels, mask = _canvas(n, s)
    for t in range(n):
        patch = _chw(resize_longer(img, e + t))
        _, h, w = patch.shape
        _paste(pixels, mask, t, patch, (s - w) // 2, (s - h) // 2)
    return Views(pixels, mask)


# The paper presets (docs/literature.md): the geometry of the original code, on the same uint8
# transport. Their canvases carry the pasted rectangle as the mask; the fill named in the
# catalogue ("mean", "azulay2019") is applied on tensors before the forward pass (views.py).


def _diagonal(square: torch.Tensor, start: int, n: int, size: int) -> torch.Tensor:
    """``n`` S x S windows of a (3, B, B) tensor at (start + t, start + t), as a strided view (no copy)."""
    c, row, col = square.stride()
    return square.as_strided((n, 3, size, size), (row + col, c, row, col), square.storage_offset() + start * (row + col))


def torchvision_resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """torchvision ``Resize(size)`` on a PIL image: the shorter side becomes ``size``, the longer
    ``int(size * long / short)`` (truncated), Pillow bilinear."""
    w, h = img.size
    new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    return resize_to(img, new)


def torchvision_centre_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision ``CenterCrop(size)`` on a PIL image at least ``size`` a side: the corner is
    ``int(round((W - size) / 2.0))`` (Python's round, half to even)."""
    w, h = img.size
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)  # torchvision's int(round(.)): half to even
    return img.crop((left, top, left + size, top + size))


def azulay_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The crop ``RandomResizedCrop(size, scale=(1, 1))`` takes (left, top, right, bottom).

    With the whole area asked for, a random attempt succeeds only when its aspect ratio is the
    image's own (the whole image, rarely one pixel short); otherwise torchvision falls back to
    the central crop with the aspect ratio clamped to [3/4, 4/3]. The preset takes that crop.
    """
    lo, hi = 3.0 / 4.0, 4.0 / 3.0
    ratio = float(width) / float(height)
    if ratio < lo:
        w, h = width, round(width / lo)  # torchvision's int(round(.)): half to even
    elif ratio > hi:
        w, h = round(height * hi), height
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return left, top, left + w, top + h


def _azulay_square(img: Image.Image, side: int) -> torch.Tensor:
    """The Azulay crop squashed to ``side x side`` (crop, then Pillow bilinear, as ``resized_crop``)."""
    return _chw(resize_to(img.crop(azulay_crop_box(*img.size)), (side, side)))


def _build_azulay_crop(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s = params.input_size
    b = s + AZULAY_CROP_MARGIN
    start = int((b - s - 1) / 2) - AZULAY_PAIRS // 2
    return Views(_diagonal(_azulay_square(img, b), start, AZULAY_PAIRS + 1, s))


def _build_azulay_canvas(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s, n = params.input_size, AZULAY_PAIRS + 1
    patch = _azulay_square(img, azulay_embed_size(s))
    start = azulay_canvas_start(s, patch.shape[1])
    pixels, mask = _canvas(n, s)
    for t in range(n):
        _paste(pixels, mask, t, patch, start + t, start + t)
    return Views(pixels, mask)


def _build_azulay_scale(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s = params.input_size
    sides = azulay_scale_sides(s)
    pixels, mask = _canvas(len(sides), s)
    for t, side in enumerate(sides):
        at = int((s - side - 1) / 2)  # the black branch's centre position for an image of this side
        _paste(pixels, mask, t, _azulay_square(img, side), at, at)
    return Views(pixels, mask)


def _zhang2019_square(img: Image.Image, params: ProtocolParams) -> torch.Tensor:
    b = params.input_size + ZHANG_MARGIN
    return _chw(torchvision_centre_crop(torchvision_resize_shorter(img, b), b))


def _build_zhang2019(img: Image.Image, image_id: str, params: ProtocolParams) -> Views:
    pairs = zhang_offsets(image_id, params, high=ZHANG_DRAW)
    return Views(_pair_windows(_zhang2019_square(img, params), pairs, params.input_size))


def _build_zhang2019_diagonal(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    return Views(_diagonal(_zhang2019_square(img, params), 0, ZHANG_DIAGONAL_VIEWS, params.input_size))


_BUILDERS: dict[str, ViewBuilder] = {
    "crop": _build_crop,
    "black": _build_black,
    "inpaint": _build_black,
    "scale": _build_scale,
    "circular": _build_circular,
    "zhang": _build_zhang,
    "zhang2019": _build_zhang2019,
    "zhang2019-diagonal": _build_zhang2019_diagonal,
    "azulay2019-crop": _build_azulay_crop,
    "azulay2019-black": _build_azulay_canvas,
    "azulay2019-inpaint": _build_azulay_canvas,
    "azulay2019-scale": _build_azulay_scale,
}
_missing = [p.name for p in list_protocols(presets=True) if p.name not in _BUILDERS]
if _missing:  # the catalogue is the one list of names; every entry needs its builder here
    raise RuntimeError(f"protocols without a view builder: {', '.join(_missing)}")
