"""Inputs that could not be used: one ``Skipped`` per input, their table, and the one rule every
stage follows when none of its images could be used (``no_usable_images``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from biasprobe.core.errors import NoUsableImageError

__all__ = ["Skipped", "no_usable_images", "skipped_frame"]


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, and why."""

    path: str
    reason: str


def skipped_frame(skipped: Iterable[Skipped]) -> pd.DataFrame:
    """The ``X.skipped.parquet`` table: one row per unusable input."""
    rows = [(s.path, s.reason) for s in skipped]
    return pd.DataFrame(rows, columns=["path", "reason"]).astype({"path": str, "reason": str})


def no_usable_images(total: int, source: str, skipped: pd.DataFrame) -> NoUsableImageError:
    """The error every stage raises when none of its ``total`` images could be used: one line
    naming the source and the first skipped input with its reason (every stage, same words)."""
    first = f" (e.g. {skipped['path'].iloc[0]}: {skipped['reason'].iloc[0]})" if len(skipped) else ""
    return NoUsableImageError(f"none of the {total} images in {source} could be used{first}")
