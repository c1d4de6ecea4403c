"""One exception family for user-facing errors; the CLI prints them as one line."""

from __future__ import annotations

__all__ = [
    "BiasprobeError",
    "ImageLoadError",
    "IndexMismatchError",
    "InputError",
    "ModelError",
    "NotBuiltError",
]


class BiasprobeError(Exception):
    """A problem the user can fix; its message is one clear line."""


class InputError(BiasprobeError):
    """Bad or missing input data (folders, manifests, boxes, class maps, parameters)."""


class ImageLoadError(InputError):
    """An image file that cannot be decoded."""


class ModelError(BiasprobeError):
    """An unknown model name or weights that do not fit the architecture."""


class IndexMismatchError(BiasprobeError):
    """An index built with a different model or preprocessing than the one scoring."""


class NotBuiltError(BiasprobeError):
    """A stage of the pipeline that this version does not provide yet."""
