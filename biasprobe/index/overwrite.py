"""Replacing an index folder (``biasprobe index build --overwrite``) without deleting anything else.

An index folder holds only the files docs/architecture.md lists ("An index folder"), the
temporary files of their atomic writes (``.NAME.XXXXXXXX.tmp``) and the folders ``shards/`` and
``shards/done/``. ``clear_index_folder`` removes those, and only when the folder holds nothing
else: a folder with any other entry (a file, a folder, a link to a folder) is refused in one line
and left as it was, so a mistyped ``--out`` never deletes someone's data. ``meta.json`` goes
first, so an interrupted clear leaves an unfinished index, never a damaged finished one.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from biasprobe.core.errors import InputError
from biasprobe.data.names import printable

__all__ = ["clear_index_folder", "index_entries", "prepare_index_folder"]

log = logging.getLogger(__name__)

_TOP = {"meta.json", "build.json", "index.faiss", "ids.parquet", "skipped.parquet", "reference.npy",
        "reference_rows.npy", "boxes.parquet"}  # fmt: skip
_SHARDS = re.compile(r"shards\.json|emb_\d{4,}\.npy|(ids|skipped)_\d{4,}\.parquet")
_DONE = re.compile(r"\d{6,}\.json")
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]+\.tmp")  # core.io.atomic_write_bytes


def _belongs(name: str, matches: re.Pattern[str] | set[str]) -> bool:
    def fits(text: str) -> bool:
        return text in matches if isinstance(matches, set) else matches.fullmatch(text) is not None

    temporary = _TEMPORARY.fullmatch(name)
    return fits(name) or (temporary is not None and fits(temporary.group("name")))


def index_entries(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(index files, other entries) below ``folder``; the folders ``shards`` and ``shards/done``
    are in neither list, a link is never followed."""
    folder = Path(folder)
    files: list[Path] = []
    others: list[Path] = []
    rules: dict[Path, re.Pattern[str] | set[str]] = {folder: _TOP, folder / "shards": _SHARDS, folder / "shards" / "done": _DONE}
    subfolders = {folder: "shards", folder / "shards": "done"}
    for here, matches in rules.items():
        if here != folder and not (here.is_dir() and not here.is_symlink()):
            continue
        with os.scandir(here) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False) and entry.name == subfolders.get(here):
                    continue
                if entry.is_file(follow_symlinks=False) and _belongs(entry.name, matches):
                    files.append(path)
                else:
                    others.append(path)
    return files, others


def _refuse_others(folder: Path, others: list[Path]) -> None:
    if others:
        shown = ", ".join(printable(str(p.relative_to(folder))) for p in others[:3]) + (", ..." if len(others) > 3 else "")
        raise InputError(
            f"--overwrite: {folder} holds {len(others)} entries that are not part of an index ({shown}); nothing was "
            "deleted: move them away or choose another --out folder"
        )


def clear_index_folder(folder: str | Path) -> int:
    """Remove the index in ``folder`` (finished or not) and return how many files went; refuses,
    removing nothing, when the folder holds anything that is not part of an index."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    if not folder.is_dir():
        raise InputError(f"--overwrite: {folder} is not a folder; give the index folder to replace")
    files, others = index_entries(folder)
    _refuse_others(folder, others)
    files.sort(key=lambda p: p.name != "meta.json")  # meta.json first: no longer a finished index
    for path in files:
        path.unlink()
    for sub in (folder / "shards" / "done", folder / "shards"):
        if sub.is_dir():
            sub.rmdir()
    log.info("--overwrite: removed the %d files of the index in %s", len(files), folder)
    return len(files)


def prepare_index_folder(folder: str | Path, *, overwrite: bool) -> None:
    """Before any work of ``index build``: without ``overwrite``, refuse a finished index in
    ``folder`` (an unfinished one is resumed by the build); with it, refuse a folder that
    ``clear_index_folder`` would refuse. Removes nothing."""
    folder = Path(folder)
    if overwrite:
        if folder.exists() and not folder.is_dir():
            raise InputError(f"--overwrite: {folder} is not a folder; give the index folder to replace")
        if folder.is_dir():
            _refuse_others(folder, index_entries(folder)[1])
    elif (folder / "meta.json").is_file():
        raise InputError(f"{folder} already holds a built index; pass --overwrite to replace it, or choose a new --out folder")
