"""The order of images and rows: a property of the data, never of the files (docs/protocols.md
section 5.4).

- Ranking by atypicality: ``atypicality``, ties broken by ``knn_dist`` (atypicality is a
  fraction of reference images, so it saturates at 1 for every image farther than all of them;
  ``knn_dist`` does not, and atypicality is monotone in it), then by ``image_id``. Other
  columns (``pose_atypicality``) break ties by ``image_id`` alone.
- Rows: sorted by ``image_id`` within each model and protocol before any resampling, so a
  bootstrap draws the same images whatever order the tables were written in.
- Protocols: in the order of section 2.2 (``PROTOCOL_ORDER``), others after them by name;
  models in the order they were given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PROTOCOL_ORDER", "TIE_BREAKS", "canonical_rows", "protocol_order", "rank_order"]

PROTOCOL_ORDER = ("crop", "black", "inpaint", "scale", "circular", "zhang")
"""docs/protocols.md section 2.2."""

TIE_BREAKS: dict[str, tuple[str, ...]] = {"atypicality": ("knn_dist",)}
"""Columns that break ties of a ranking column before ``image_id`` does."""


def protocol_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """Distinct protocol names in section 2.2's order, unknown names after them by name."""
    known = [p for p in PROTOCOL_ORDER if p in names]
    return known + sorted(set(names) - set(known))


def _ids(frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(frame["image_id"].astype(str).tolist(), dtype=str)


def canonical_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` sorted by ``image_id`` (then ``path``), index reset; unchanged without image ids."""
    if "image_id" not in frame.columns or len(frame) < 2:
        return frame.reset_index(drop=True)
    keys = [_ids(frame)]
    if "path" in frame.columns:
        keys.insert(0, np.asarray(frame["path"].astype(str).tolist(), dtype=str))
    order = np.lexsort(keys)  # the last key is the primary one
    return frame.iloc[order].reset_index(drop=True)


def rank_order(scored: pd.DataFrame, column: str) -> np.ndarray:
    """Row positions of ``scored`` from most typical to most atypical by ``column``.

    Ties are broken by the columns ``TIE_BREAKS`` names for ``column`` (when present), then by
    ``image_id``; missing tie-break values sort last.
    """
    keys: list[np.ndarray] = [_ids(scored)]
    for tie in reversed(TIE_BREAKS.get(column, ())):
        if tie in scored.columns:
            values = pd.to_numeric(scored[tie], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            keys.append(np.where(np.isnan(values), np.inf, values))
    keys.append(pd.to_numeric(scored[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    return np.lexsort(keys)
