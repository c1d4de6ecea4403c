"""Read access by JSON key to a typed record, for callers written against the plain JSON dict."""

from __future__ import annotations

from typing import Any

from biasprobe.core.records import JsonRecord

__all__ = ["KeyedRecord"]


class KeyedRecord(JsonRecord):
    """A ``JsonRecord`` that also answers ``record["key"]`` and ``record.get("key")`` with the
    value at that key of its JSON form (``to_json``). New code reads the typed fields."""

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)
