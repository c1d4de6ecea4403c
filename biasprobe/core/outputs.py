"""Checking an output path before the work that fills it (docs/reliability.md).

Every command calls ``check_output_path`` on its ``--out`` before any heavy work, so a path that
cannot be written is refused in one line at once, not after an hour of embedding:

- ``"table"``: a ``.parquet`` file; its companions (``X.views.parquet``, ``X.skipped.parquet``,
  ``X.summary.json``) and ``X.parts/`` go beside it;
- ``"file"``: any other file (the HTML report, a checkpoint);
- ``"folder"``: a folder to create or fill (an index, a world, the demo's output).

It refuses a folder where a file goes and a file where a folder goes (or on the way to it), a
name too long for the file system once the companion and temporary suffixes are added, a
folder that cannot be written (read-only, permission, a pseudo file system such as /proc) and
a disk with no space left, by creating and removing a small probe file where the output will
go. Nothing is created otherwise. A disk that fills up during the work is still reported in
one line by ``io.atomic_write_bytes``, and leaves nothing half-written under a final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from biasprobe.core.errors import OutputError, os_error_reason
from biasprobe.core.io import companion

__all__ = ["OutputKind", "check_output_path"]

OutputKind = Literal["table", "file", "folder"]

# atomic_write_bytes writes ".{name}.XXXXXXXX.tmp" first: 14 bytes longer than the name.
_TMP_EXTRA = 14
_DEFAULT_NAME_MAX = 255


def _names(path: Path, kind: OutputKind) -> list[str]:
    """The file names written beside ``path`` (itself first)."""
    if kind == "table":
        stem = path.name.removesuffix(".parquet")
        return [path.name, *(companion(path, k).name for k in ("views", "skipped", "summary")), f"{stem}.parts"]
    return [path.name]


def _is_dir(path: Path) -> bool:
    """Like ``Path.is_dir``, False also for a path the system cannot even look up (too long)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _existing_ancestor(path: Path) -> Path:
    here = path.absolute()
    while not os.path.lexists(here) and here != here.parent:
        here = here.parent
    return here


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - non-POSIX
        return _DEFAULT_NAME_MAX


def check_output_path(path: str | Path, kind: OutputKind, *, flag: str = "--out") -> Path:
    """``path`` itself when an output of ``kind`` can be written there, else an ``OutputError``."""
    path = Path(path)
    shown = f"{flag} {path}"
    if kind == "table" and path.suffix != ".parquet":
        raise OutputError(f"{flag} must end in .parquet, got {path}")
    if _is_dir(path) and kind != "folder":
        raise OutputError(f"{shown} is a folder; give a file name{' ending in .parquet' if kind == 'table' else ''}")
    if kind == "folder" and os.path.lexists(path) and not _is_dir(path):
        raise OutputError(f"{shown} is a file, and a folder is written there; give a new folder name")
    if not path.name:
        raise OutputError(f"{shown} names no file; give a file name")
    folder = path if kind == "folder" else path.parent
    ancestor = _existing_ancestor(folder)
    if not _is_dir(ancestor):
        raise OutputError(f"cannot write {shown}: {ancestor} is a file, not a folder")
    limit = _name_max(ancestor)
    to_create = folder.absolute().relative_to(ancestor).parts
    files = [] if kind == "folder" else _names(path, kind)
    longest = max([*(len(p.encode()) for p in to_create), *(len(n.encode()) + _TMP_EXTRA for n in files)], default=0)
    if longest > limit:
        raise OutputError(
            f"cannot write {shown}: a name is too long for the file system ({longest} bytes with the "
            f"companion and temporary suffixes, at most {limit}); choose a shorter name"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".biasprobe-check-", suffix=".tmp", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {os_error_reason(exc)} ({ancestor})") from exc
    try:
        free = shutil.disk_usage(ancestor).free
    except OSError:  # pragma: no cover - the probe above succeeded
        free = 1
    if free == 0:
        raise OutputError(f"cannot write {shown}: no space left on the device holding {ancestor}; free some space first")
    return path
