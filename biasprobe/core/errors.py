"""One exception family for user-facing errors; the CLI prints them as one line."""

from __future__ import annotations

import errno

__all__ = [
    "BiasprobeError",
    "DamagedStateError",
    "EngineError",
    "ImageLoadError",
    "IndexMismatchError",
    "InputError",
    "ModelError",
    "NoUsableImageError",
    "NotBuiltError",
    "OutputError",
    "os_error_reason",
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


class NoUsableImageError(InputError):
    """A stage was given images of which none could be used (every one skipped)."""


class DamagedStateError(InputError):
    """Stored state (an index file, a finished unit) that no longer matches what was written."""


class EngineError(BiasprobeError):
    """An engine that cannot run the work: Ray missing, workers that cannot be scheduled or keep dying."""


class OutputError(BiasprobeError):
    """An output path that cannot be written: a folder where a file goes, a full or read-only disk."""


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.ENAMETOOLONG: "the file name is too long for the file system",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "no file can be created there (a folder on the path is missing, or it is a special file system such as /proc)",
    errno.EEXIST: "a file of that name is in the way",
}


def os_error_reason(exc: OSError) -> str:
    """The plain meaning of a failed file operation (its errno), e.g. 'no space left on the device'."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return exc.strerror or type(exc).__name__
