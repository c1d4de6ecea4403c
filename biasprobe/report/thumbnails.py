"""Image thumbnails as data: URIs, decoded with biasprobe.loading (as the model saw them).

Paths in the tables are relative to the images root; a thumbnail that cannot be made comes
back with a reason instead of raising, so a missing file never breaks a report.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from biasprobe.core.errors import BiasprobeError
from biasprobe.data.loading import load_image
from biasprobe.data.names import fs_path
from biasprobe.data.sources import BUILTIN_PHOTOS, bundled_photo_paths

__all__ = ["Thumbnail", "resolve_image", "thumbnail"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thumbnail:
    """A JPEG data: URI, or an empty URI and the reason there is no picture."""

    uri: str
    error: str = ""


def resolve_image(path: str, roots: tuple[str | Path | None, ...] = ()) -> Path | None:
    """The first existing file among ``path`` as given and ``path`` below each root.

    ``path`` is table text (``data.names``: non-UTF-8 bytes of a name escaped); a root of
    ``builtin:photos`` maps names such as ``coffee.png`` to the bundled photos, and a root that
    is a ``.csv`` manifest stands for its folder (its paths are relative to it).
    """
    candidate = fs_path("", path)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for root in roots:
        if root is None:
            continue
        if str(root) == BUILTIN_PHOTOS:
            found = bundled_photo_paths().get(candidate.stem)
            if found is not None:
                return found
            continue
        base = Path(root)
        full = (base.parent if base.suffix.lower() == ".csv" and base.is_file() else base) / candidate
        if full.is_file():
            return full
    return candidate if candidate.is_file() else None


def thumbnail(path: str, *, roots: tuple[str | Path | None, ...] = (), size: int = 112) -> Thumbnail:
    """Decode an image (docs/protocols.md section 1) and shrink it to fit ``size`` x ``size``."""
    file = resolve_image(str(path), roots)
    if file is None:
        where = ", ".join(str(r) for r in roots if r is not None) or "no images root given (--images)"
        return Thumbnail("", f"file not found (looked in: {where})")
    try:
        img, _ = load_image(file)
    except BiasprobeError as exc:
        return Thumbnail("", str(exc))
    img.thumbnail((size, size))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85)
    return Thumbnail("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
