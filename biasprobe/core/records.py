"""Typed JSON records between stages: frozen dataclasses with a format name and version.

A stage writes its summary (or an index its meta) with ``write``; the next stage reads it
with ``read``, which refuses in one line a file of another format or format version instead
of guessing at its fields. Subclasses set ``FORMAT`` and ``FORMAT_VERSION`` and, where a
field holds another record or a tuple, override ``from_fields``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from biasprobe.core.errors import InputError, os_error_reason
from biasprobe.core.io import to_jsonable, write_json

__all__ = ["FormatError", "JsonRecord", "read_json_object"]

R = TypeVar("R", bound="JsonRecord")


class FormatError(InputError):
    """A stored file of another format or format version than this biasprobe reads."""


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON object from a file, or an InputError that names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a folder; expected a JSON file") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {os_error_reason(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not a JSON text file (byte {exc.start} is not UTF-8 text)") from exc
    except json.JSONDecodeError as exc:
        what = "is empty" if not exc.doc.strip() else f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        raise InputError(f"{path} {what}: damaged, truncated or not a biasprobe file") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} does not hold a JSON object")
    return data


@dataclasses.dataclass(frozen=True)
class JsonRecord:
    """Base of the typed records: ``to_json`` / ``from_json`` / ``write`` / ``read``."""

    FORMAT: ClassVar[str] = "record"
    FORMAT_VERSION: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, with the format name and version first."""
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out = to_jsonable({"format": self.FORMAT, "format_version": self.FORMAT_VERSION, **body})
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_fields(cls: type[R], fields: dict[str, Any]) -> R:
        """Build from the JSON fields (format keys removed); override for nested values."""
        return cls(**fields)

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any], *, source: str = "<json>") -> R:
        """Check the format name and version, then build; one clear line when they differ."""
        found, version = data.get("format"), data.get("format_version")
        if found != cls.FORMAT or version != cls.FORMAT_VERSION:
            raise FormatError(
                f"{source} holds format {found!r} version {version!r}; this biasprobe reads {cls.FORMAT!r} "
                f"version {cls.FORMAT_VERSION}: write it again with this version"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k not in ("format", "format_version")}
        missing, extra = names - set(fields), set(fields) - names
        if missing or extra:
            raise FormatError(
                f"{source}: {cls.FORMAT!r} version {version} with missing {sorted(missing)} or unknown "
                f"{sorted(extra)} fields; write it again with this version"
            )
        return cls.from_fields(fields)

    def write(self, path: str | Path) -> Path:
        """Write atomically as JSON."""
        return write_json(self.to_json(), path)

    @classmethod
    def read(cls: type[R], path: str | Path) -> R:
        """Read a file written by ``write``."""
        return cls.from_json(read_json_object(path), source=str(path))
