"""Images grouped by atypicality: equal-count bins (deciles) and halves, and their tables.

The scored images are ranked by atypicality, ties broken by ``knn_dist`` and then by image id
(``order.rank_order``), so bins and halves depend on the data alone, not on the rows' order.

- Deciles: equal-count bins of that ranking (``pandas.qcut`` on the rank); per bin n, the
  range of the ranked column (and of ``knn_dist``), P(top-1 change), MAC, accuracy with CIs,
  and the error and instability ratios ``(1 - acc_bin) / (1 - acc_all)`` and ``P_bin / P_all``.
- Halves: the first ceil(n / 2) images of that ranking are typical, the others atypical (the
  split at the median when no two images tie).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biasprobe.analysis.columns import float_values
from biasprobe.analysis.groups import group_stats
from biasprobe.analysis.order import TIE_BREAKS, rank_order

__all__ = ["assign_bins", "assign_halves", "decile_table", "halves_table"]


def _ranked(scores: pd.DataFrame, column: str) -> pd.DataFrame:
    """The scored images (one row per image id, ``column`` known) from most typical to most atypical."""
    keep = ["image_id", column, *(c for c in TIE_BREAKS.get(column, ()) if c in scores.columns)]
    scored = scores[keep].dropna(subset=[column]).drop_duplicates("image_id")
    return scored.iloc[rank_order(scored, column)]


def assign_bins(scores: pd.DataFrame, *, column: str = "atypicality", bins: int = 10) -> pd.Series:
    """Equal-count bins (1 = most typical) of the scored images ranked by ``column``, by image_id.

    ``pandas.qcut`` on the rank of ``order.rank_order`` (ties broken by ``knn_dist`` for
    atypicality, then by image id), so every bin holds n/bins images whatever the rows' order;
    fewer bins when there are fewer images than ``bins``; empty when fewer than 2 images.
    """
    if column not in scores.columns:
        return pd.Series(dtype="int64", name="bin")
    ranked = _ranked(scores, column)
    k = min(bins, len(ranked))
    if k < 2:
        return pd.Series(dtype="int64", name="bin")
    labels = pd.qcut(np.arange(1, len(ranked) + 1), k, labels=False).astype("int64") + 1
    return pd.Series(labels, index=ranked["image_id"].astype(str).to_numpy(), name="bin")


def assign_halves(scores: pd.DataFrame, *, column: str = "atypicality") -> pd.Series:
    """'typical' (the first ceil(n / 2) of the ranking) or 'atypical' (the rest), by image_id."""
    if column not in scores.columns:
        return pd.Series(dtype="object", name="half")
    ranked = _ranked(scores, column)
    if ranked.empty:
        return pd.Series(dtype="object", name="half")
    typical = (len(ranked) + 1) // 2
    halves = np.where(np.arange(len(ranked)) < typical, "typical", "atypical")
    return pd.Series(halves, index=ranked["image_id"].astype(str).to_numpy(), name="half")


def decile_table(
    joined: pd.DataFrame, bins: pd.Series, *, column: str = "atypicality", seed: int = 0
) -> pd.DataFrame:
    """Per bin: n, range of ``column`` (and of its tie-breaks, e.g. ``knn_dist``), P(change), MAC,
    accuracy (with CIs) and the two ratios."""
    if bins.empty or joined.empty:
        return pd.DataFrame()
    frame = joined.assign(bin=joined["image_id"].map(bins)).dropna(subset=["bin"])
    if frame.empty:
        return pd.DataFrame()
    overall = group_stats(frame, seed=seed)
    rows = []
    for b, group in frame.groupby("bin", sort=True):
        stats = group_stats(group, seed=seed)
        row: dict[str, float | int] = {"bin": int(b)}
        for col in (column, *TIE_BREAKS.get(column, ())):
            if col in group.columns:
                values = float_values(group[col])
                values = values[np.isfinite(values)]
                row[f"{col}_min"] = float(values.min()) if values.size else float("nan")
                row[f"{col}_max"] = float(values.max()) if values.size else float("nan")
        row.update(stats.to_row())
        p_all, acc_all = overall.p_change.value, overall.accuracy.value
        row["instability_ratio"] = stats.p_change.value / p_all if p_all > 0 else float("nan")
        row["error_ratio"] = (1 - stats.accuracy.value) / (1 - acc_all) if acc_all < 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def halves_table(joined: pd.DataFrame, halves: pd.Series, *, seed: int = 0) -> pd.DataFrame:
    """Per half (typical, atypical): n, P(change), MAC, accuracy with CIs, share of all flips."""
    if halves.empty or joined.empty:
        return pd.DataFrame()
    frame = joined.assign(half=joined["image_id"].map(halves)).dropna(subset=["half"])
    total_flips = float(float_values(frame["flips"]).sum())
    rows = []
    for half in ("typical", "atypical"):
        group = frame[frame["half"] == half]
        stats = group_stats(group, seed=seed)
        row: dict[str, object] = {"half": half, **stats.to_row()}
        row["share_of_flips"] = stats.flips / total_flips if total_flips > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
