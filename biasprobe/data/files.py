"""Which directory entries are read at all, and reading one file safely.

- Hidden entries (a name starting with ``.``) and known system entries (``__MACOSX``,
  ``Thumbs.db``, ``@eaDir``, ...) are never inputs or classes: ``ignored_reason`` says why.
- Only regular files are read, after following symbolic links: a FIFO would block forever, a
  device (``/dev/zero``) never ends. ``file_problem`` checks an entry when a source is listed;
  ``read_bounded`` checks again when the file is opened (it may have changed in between),
  opens without blocking, and never reads more than the size limit.
- The size limit is ``max_file_bytes()``: 256 MiB, or the ``BIASPROBE_MAX_FILE_BYTES``
  environment variable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from biasprobe.core.errors import ImageLoadError, InputError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "MAX_FILE_BYTES_ENV",
    "SYSTEM_NAMES",
    "file_problem",
    "ignored_reason",
    "max_file_bytes",
    "read_bounded",
]

DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_FILE_BYTES_ENV = "BIASPROBE_MAX_FILE_BYTES"

# Entries that operating systems, archivers and NAS boxes leave beside users' files.
SYSTEM_NAMES: dict[str, str] = {
    "__MACOSX": "macOS archive metadata",
    "Thumbs.db": "Windows thumbnail cache",
    "ehthumbs.db": "Windows thumbnail cache",
    "ehthumbs_vista.db": "Windows thumbnail cache",
    "desktop.ini": "Windows folder settings",
    "$RECYCLE.BIN": "Windows recycle bin",
    "System Volume Information": "Windows system folder",
    "@eaDir": "Synology NAS metadata",
    "#recycle": "Synology NAS recycle bin",
    "lost+found": "file system recovery folder",
    "Icon\r": "macOS folder icon",
    "__pycache__": "Python cache",
}


def ignored_reason(name: str) -> str | None:
    """Why a directory entry of this name is not an input (None when it may be one)."""
    if name in SYSTEM_NAMES:
        return f"system entry, not read ({SYSTEM_NAMES[name]})"
    if name.startswith("."):
        return "hidden entry (its name starts with '.'), not read"
    return None


def max_file_bytes() -> int:
    """The largest file biasprobe reads: 256 MiB unless BIASPROBE_MAX_FILE_BYTES says otherwise."""
    text = os.environ.get(MAX_FILE_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_FILE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{MAX_FILE_BYTES_ENV} must be a whole number of bytes >= 1, got {text!r}")
    return value


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _size_problem(size: int, limit: int) -> str | None:
    if size <= limit:
        return None
    return f"file of {size / 2**20:.1f} MiB is over the {limit / 2**20:.1f} MiB limit ({MAX_FILE_BYTES_ENV})"


def _mode_problem(mode: int, *, link: bool) -> str | None:
    if stat.S_ISREG(mode):
        return None
    target = "a symbolic link to " if link else ""
    return f"not a regular file: {target}{_kind(mode)}, not read"


def file_problem(path: str | Path, *, limit: int | None = None) -> str | None:
    """Why ``path`` cannot be read as an input file, or None when it is a regular file (after
    following links) no larger than the limit. Never opens the file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "file not found"
    except OSError as exc:
        return f"cannot inspect the file: {exc.strerror or exc}"
    return _mode_problem(info.st_mode, link=os.path.islink(path)) or _size_problem(
        info.st_size, max_file_bytes() if limit is None else limit
    )


def read_bounded(path: str | Path, *, name: str, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``ImageLoadError`` otherwise.

    Opened without blocking (a FIFO cannot hang the read) and checked on the open descriptor,
    so a file swapped for something else after listing is refused too.
    """
    limit = max_file_bytes() if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageLoadError(f"cannot read image {name}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb", buffering=0) as handle:
        try:
            info = os.fstat(fd)
            problem = _mode_problem(info.st_mode, link=os.path.islink(path)) or _size_problem(info.st_size, limit)
            if problem is not None:
                raise ImageLoadError(f"cannot read image {name}: {problem}")
            chunks: list[bytes] = []
            total = 0
            while total <= limit:
                chunk = handle.read(min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise ImageLoadError(f"cannot read image {name}: {exc.strerror or exc}") from exc
    if total > limit:  # it grew after fstat
        raise ImageLoadError(f"cannot read image {name}: {_size_problem(total, limit)}")
    return b"".join(chunks)
