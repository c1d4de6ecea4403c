"""File names as table text: every name kept losslessly, even one that is not UTF-8.

A POSIX file name is bytes. Python hands names that are not valid UTF-8 to us as ``str`` with
lone surrogates (``os.fsdecode``'s surrogateescape), which Parquet, JSON and HTML cannot hold.
The rule (docs/reliability.md): the text of a name is its bytes decoded as UTF-8, where a
backslash is written ``\\\\`` and each byte that is not part of valid UTF-8 is written ``\\xNN``
(two lower-case hex digits). Names that are valid UTF-8 and hold no backslash are unchanged;
``name_bytes`` gives the exact bytes back, ``fs_path`` the path to open.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

__all__ = ["escape_name", "fs_path", "name_bytes", "printable"]

_ESCAPE = re.compile(rb"\\\\|\\x([0-9a-fA-F]{2})")


def escape_name(name: str | bytes | PurePath) -> str:
    """The table text of a file name or relative path (see the module's rule)."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def name_bytes(text: str) -> bytes:
    """The exact bytes of a name written by ``escape_name``."""

    def unescape(match: re.Match[bytes]) -> bytes:
        return b"\\" if match.group(1) is None else bytes([int(match.group(1), 16)])

    return _ESCAPE.sub(unescape, text.encode("utf-8"))


def fs_path(root: str | Path, relative: str) -> Path:
    """The file a table's ``path`` text names below ``root``."""
    return Path(root) / os.fsdecode(name_bytes(relative))


def printable(text: str) -> str:
    """``text`` with any lone surrogate (a non-UTF-8 byte of a file name) written ``\\xNN``,
    so messages and table text can always be encoded; valid text is returned unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    return text


def _only_escapes(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)
