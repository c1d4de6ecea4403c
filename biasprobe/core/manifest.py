"""One resume mechanism: a run's settings stored beside its outputs, compared before reuse.

A resumable stage (index build, embedding shards, invariance units, the demo's steps) writes
its settings as a JSON manifest when it starts. A later run in the same place compares its
own settings with the stored ones: equal, it reuses the finished work; different, it is
refused with a line naming the keys that differ (or, for the demo, the stale work is cleared
and redone). Settings are compared as JSON values, so tuples and lists, paths and strings
compare alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biasprobe.core.errors import DamagedStateError, InputError
from biasprobe.core.io import to_jsonable, write_json

__all__ = ["RunManifest", "SettingsMismatchError"]


class SettingsMismatchError(InputError):
    """A folder holds unfinished work made with other settings."""


def _normalise(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(to_jsonable(dict(settings)), sort_keys=True, default=str))


@dataclass(frozen=True)
class RunManifest:
    """The settings file of a run: ``path`` holds ``settings`` once the run has started."""

    path: Path
    settings: dict[str, Any]

    @classmethod
    def at(cls, path: str | Path, settings: Mapping[str, Any]) -> RunManifest:
        return cls(Path(path), _normalise(settings))

    def _read(self) -> tuple[dict[str, Any] | None, str | None]:
        """(stored settings, None), (None, None) when none are stored, or (None, why unreadable)."""
        if not self.path.is_file():
            return None, None
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None, "is not valid JSON"
        return (data, None) if isinstance(data, dict) else (None, "does not hold a JSON object")

    def stored(self) -> dict[str, Any] | None:
        """The settings on disk, or None when no run has started here (an unreadable file reads
        as settings that match nothing)."""
        data, damaged = self._read()
        return {"<unreadable manifest>": damaged} if damaged is not None else data

    def damaged(self) -> str | None:
        """Why the stored manifest cannot be read, or None (nothing stored, or readable)."""
        return self._read()[1]

    def differences(self) -> list[str]:
        """Keys whose stored value differs from ours (empty when equal or nothing stored)."""
        stored = self.stored()
        if stored is None:
            return []
        keys = set(stored) | set(self.settings)
        return sorted(k for k in keys if stored.get(k) != self.settings.get(k))

    def matches(self) -> bool:
        """Whether a run with exactly these settings started here."""
        return self.stored() == self.settings

    def claim(self, *, what: str, hint: str) -> None:
        """Start or resume here: write the settings, or refuse when stored ones differ.

        The refusal is one line: ``{folder} holds {what} with different {keys}; {hint}``. A stored
        manifest that cannot be read is refused as damaged, never taken for other settings.
        """
        damaged = self.damaged()
        if damaged is not None:
            raise DamagedStateError(
                f"{self.path} {damaged} (damaged), so the work in {self.path.parent} cannot be trusted; "
                f"delete {self.path.parent} to start again"
            )
        differs = self.differences()
        if differs:
            raise SettingsMismatchError(f"{self.path.parent} holds {what} with different {', '.join(differs)}; {hint}")
        if self.stored() is None:
            self.write()

    def write(self) -> None:
        """Store the settings (atomically)."""
        write_json(self.settings, self.path)
