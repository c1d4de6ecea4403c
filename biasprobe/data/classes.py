"""``--classes FILE``: map folder names (such as ImageNet wnids) to class indices and names.

Accepted formats:
- text, one class a line, ``FOLDER [NAME ...]``; the line number is the index
  (ImageNet's ``LOC_synset_mapping.txt``);
- CSV with a header holding ``folder`` and ``index`` (and optionally ``name``);
- JSON: ``{"FOLDER": INDEX}``, ``{"FOLDER": [INDEX, NAME]}`` or a list of folder names.

Text files and JSON lists number their classes by position (``positional``); with a model
whose classes are ImageNet wnids, ``data.labels`` reads a positional file of wnids by wnid
instead (docs/reliability.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from biasprobe.core.errors import InputError

__all__ = ["ClassMap", "read_class_map"]


@dataclass(frozen=True)
class ClassMap:
    """Folder name -> (class index, class name).

    ``positional``: the indices are positions in the file (a text file, a JSON list), not
    written in it. ``source``: the file, for messages.
    """

    entries: dict[str, tuple[int, str]]
    positional: bool = False
    source: str | None = None

    def index_of(self, folder: str) -> int | None:
        entry = self.entries.get(folder)
        return None if entry is None else entry[0]

    def names(self) -> dict[int, str]:
        return {index: name for index, name in self.entries.values()}


def _from_json(data: object, path: Path) -> dict[str, tuple[int, str]]:
    if isinstance(data, list):
        return {str(folder): (i, str(folder)) for i, folder in enumerate(data)}
    if isinstance(data, dict):
        out: dict[str, tuple[int, str]] = {}
        for folder, value in data.items():
            if isinstance(value, int):
                out[folder] = (value, folder)
            elif isinstance(value, list) and len(value) == 2:
                out[folder] = (int(value[0]), str(value[1]))
            else:
                raise InputError(f"classes file {path}: entry {folder!r} is not INDEX or [INDEX, NAME]")
        return out
    raise InputError(f"classes file {path}: expected a JSON object or list")


def _from_csv(path: Path) -> dict[str, tuple[int, str]]:
    table = pd.read_csv(path, dtype={"folder": str})
    if not {"folder", "index"} <= set(table.columns):
        raise InputError(f"classes CSV {path} needs the columns folder,index[,name]")
    names = table["name"] if "name" in table.columns else table["folder"]
    return {
        str(f): (int(i), str(n)) for f, i, n in zip(table["folder"], table["index"], names, strict=True)
    }


def _from_text(text: str) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for index, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
        folder, _, name = line.strip().partition(" ")
        out[folder] = (index, name.strip() or folder)
    return out


def read_class_map(path: str | Path) -> ClassMap:
    """Read a class map file in any of the accepted formats."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read classes file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read classes file {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            entries, positional = _from_json(data, path), isinstance(data, list)
        elif path.suffix.lower() == ".csv":
            entries, positional = _from_csv(path), False
        else:
            entries, positional = _from_text(text), True
    except (ValueError, KeyError) as exc:
        raise InputError(f"cannot parse classes file {path}: {exc}") from exc
    if not entries:
        raise InputError(f"classes file {path} lists no classes")
    return ClassMap(entries, positional=positional, source=str(path))
