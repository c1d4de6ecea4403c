"""The object and its grid of positions on the black canvas (docs/protocols.md sections 8.1-8.2).

``object_patch`` cuts the object out of a decoded image: its largest box as the embedding
preprocessing scales it (section 4.2), or the whole image with its longer side at ``E``; an
object whose longer side exceeds ``E`` is brought to ``E``. ``PositionGrid`` lists every
top-left corner, ``step`` pixels apart, at which the object fits whole on the S x S canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.core.rounding import rnd
from biasprobe.data.boxes import Box
from biasprobe.data.transforms import resize_longer, resize_shorter

__all__ = ["MAX_POSITIONS", "PositionGrid", "default_step", "object_patch", "paste"]

MAX_POSITIONS = 48
"""The default step keeps at most this many positions per axis."""


def _chw(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def object_patch(image: Image.Image, box: Box | None, *, resize_size: int, embed_size: int) -> torch.Tensor:
    """The object as uint8 (3, h, w): the box's pixels in the image resized so its shorter side
    is ``resize_size`` (the embedding preprocessing's scale), or, without a box, the whole image
    with its longer side ``embed_size``; longer than ``embed_size``, it is resized to it."""
    if box is None:
        return _chw(resize_longer(image, embed_size))
    if box.image_width <= 0 or box.image_height <= 0:
        raise InputError(f"the box records an image of {box.image_width} x {box.image_height} pixels")
    scaled = resize_shorter(image, resize_size)
    sx, sy = scaled.width / box.image_width, scaled.height / box.image_height
    left, top = max(0, rnd(box.xmin * sx)), max(0, rnd(box.ymin * sy))
    right = min(scaled.width, rnd((box.xmin + box.width) * sx))
    bottom = min(scaled.height, rnd((box.ymin + box.height) * sy))
    if right <= left or bottom <= top:
        raise InputError(f"the box ({box.xmin:g}, {box.ymin:g}, {box.width:g} x {box.height:g}) holds no pixel of the "
                         f"{image.width} x {image.height} image")  # fmt: skip
    crop = scaled.crop((left, top, right, bottom))
    if max(crop.size) > embed_size:
        crop = resize_longer(crop, embed_size)
    return _chw(crop)


def default_step(free: int, limit: int = MAX_POSITIONS) -> int:
    """1 when ``free + 1`` positions fit in ``limit``, else the smallest step leaving at most ``limit``."""
    step = 1
    while free // step + 1 > limit:
        step += 1
    return step


@dataclass(frozen=True)
class PositionGrid:
    """The top-left corners of an ``width`` x ``height`` object on a ``canvas``-pixel square,
    ``step`` apart, centred: ``n`` positions per axis, the first at ``start``."""

    canvas: int
    width: int
    height: int
    step: int

    @classmethod
    def for_object(cls, canvas: int, width: int, height: int, step: int | None = None) -> PositionGrid:
        """The grid of an object; the default step is ``default_step`` of the larger free range."""
        if width > canvas or height > canvas:
            raise InputError(f"the object ({width} x {height} pixels) is larger than the {canvas}-pixel canvas")
        if step is None:
            step = default_step(canvas - min(width, height))
        if step < 1:
            raise InputError(f"--step must be at least 1, got {step}")
        return cls(canvas, width, height, step)

    def _axis(self, size: int) -> np.ndarray:
        free = self.canvas - size
        n = free // self.step + 1
        start = (free - (n - 1) * self.step) // 2
        return start + self.step * np.arange(n, dtype=np.int64)

    @property
    def lefts(self) -> np.ndarray:
        return self._axis(self.width)

    @property
    def tops(self) -> np.ndarray:
        return self._axis(self.height)

    @property
    def shape(self) -> tuple[int, int]:
        """(positions across, positions down)."""
        return len(self.lefts), len(self.tops)

    def __len__(self) -> int:
        nx, ny = self.shape
        return nx * ny

    def corners(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per position, row-major (down, then across): grid column, grid row, left, top."""
        nx, ny = self.shape
        gy, gx = np.divmod(np.arange(nx * ny, dtype=np.int64), nx)
        return gx, gy, self.lefts[gx], self.tops[gy]

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Per position, the object's centre on the canvas normalised to [0, 1] (as box features)."""
        _, _, left, top = self.corners()
        return (left + self.width / 2) / self.canvas, (top + self.height / 2) / self.canvas

    @property
    def reference(self) -> int:
        """The position nearest the canvas centre: grid column ``(nx - 1) // 2``, row ``(ny - 1) // 2``."""
        nx, ny = self.shape
        return ((ny - 1) // 2) * nx + (nx - 1) // 2


def paste(patch: torch.Tensor, lefts: np.ndarray, tops: np.ndarray, canvas: int) -> torch.Tensor:
    """uint8 (n, 3, S, S): the patch pasted on black at each (left, top)."""
    _, h, w = patch.shape
    out = torch.zeros((len(lefts), 3, canvas, canvas), dtype=torch.uint8)
    for i, (x, y) in enumerate(zip(lefts.tolist(), tops.tolist(), strict=True)):
        out[i, :, y : y + h, x : x + w] = patch
    return out
