"""Decode image files into 8-bit RGB exactly as docs/protocols.md section 1 says, and name them.

The rules: EXIF orientation applied, first frame of animations, 16-bit grayscale scaled by
``value >> 8``, alpha composited on black (``RGB * alpha / 255`` rounded half up), every other
mode through Pillow's ``convert("RGB")``. Image ids are the first 16 hex digits of the SHA-1 of
the file's bytes (section 4).

Any failure to read or decode a file is an ``ImageLoadError`` whose message names the file
(non-UTF-8 bytes of its name written ``\\xNN``, ``names.printable``): only regular files are read,
at most ``files.max_file_bytes()`` of them, and Pillow's decompression-bomb limit holds.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from biasprobe.core.errors import ImageLoadError
from biasprobe.core.hashing import image_id
from biasprobe.data.files import read_bounded
from biasprobe.data.names import printable

__all__ = ["IMAGE_SUFFIXES", "decode_rgb", "load_image"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
)


def _composite_on_black(rgba: np.ndarray) -> np.ndarray:
    """``RGB * alpha / 255`` rounded half up, on uint8 arrays (exact integer arithmetic)."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:4].astype(np.uint32)
    # floor(x / 255 + 0.5) == (2 * x + 255) // 510 for non-negative integers x.
    return ((2 * rgb * alpha + 255) // 510).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        values = np.asarray(img).astype(np.int64)
        gray = (values.clip(0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    has_alpha = mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        mode == "P" and "transparency" in img.info
    )
    if mode in ("RGBa", "La"):  # premultiplied alpha already sits on black
        return img.convert("RGB")
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        return Image.fromarray(_composite_on_black(rgba), "RGB")
    if mode == "RGB":
        return img
    return img.convert("RGB")


def decode_rgb(data: bytes, *, name: str = "<bytes>") -> Image.Image:
    """Decode file bytes into an 8-bit RGB Pillow image following docs/protocols.md section 1."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            img.load()
            oriented = ImageOps.exif_transpose(img)
            if oriented is None:  # pragma: no cover - only with in_place=True
                oriented = img
            rgb = _to_rgb(oriented)
            rgb.load()
            return rgb
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"cannot decode image {printable(name)}: not a recognised image format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"cannot decode image {printable(name)}: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"cannot decode image {printable(name)}: {printable(str(exc))}") from exc
    except MemoryError as exc:
        raise ImageLoadError(f"cannot decode image {printable(name)}: out of memory") from exc
    except Exception as exc:  # Pillow's plugins raise many kinds on malformed files
        raise ImageLoadError(f"cannot decode image {printable(name)}: {type(exc).__name__}: {printable(str(exc))}") from exc


def load_image(path: str | Path) -> tuple[Image.Image, str]:
    """Read a regular file (at most ``max_file_bytes()``), returning its RGB image and its image id."""
    name = printable(str(path))
    data = read_bounded(path, name=name)
    return decode_rgb(data, name=name), image_id(data)
