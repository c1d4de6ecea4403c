"""Inputs that could not be used: one ``Skipped`` per input, and their table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

__all__ = ["Skipped", "skipped_frame"]


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, and why."""

    path: str
    reason: str


def skipped_frame(skipped: Iterable[Skipped]) -> pd.DataFrame:
    """The ``X.skipped.parquet`` table: one row per unusable input."""
    rows = [(s.path, s.reason) for s in skipped]
    return pd.DataFrame(rows, columns=["path", "reason"]).astype({"path": str, "reason": str})
