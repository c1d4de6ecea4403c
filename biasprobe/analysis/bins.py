"""Images grouped by atypicality: equal-count bins (deciles) and halves, and their tables.

- Deciles: equal-count bins of the scored images ranked by atypicality (``pandas.qcut`` on
  rank); per bin n, P(top-1 change), MAC, accuracy with CIs, and the error and instability
  ratios ``(1 - acc_bin) / (1 - acc_all)`` and ``P_bin / P_all``.
- Halves: split at the median atypicality of the scored images (typical: <= median).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biasprobe.analysis.columns import float_values
from biasprobe.analysis.groups import group_stats

__all__ = ["assign_bins", "assign_halves", "decile_table", "halves_table"]


def assign_bins(scores: pd.DataFrame, *, column: str = "atypicality", bins: int = 10) -> pd.Series:
    """Equal-count bins (1 = most typical) of the scored images ranked by ``column``, by image_id.

    ``pandas.qcut`` on the rank (ties broken by order), so every bin holds n/bins images;
    fewer bins when there are fewer images than ``bins``; empty when fewer than 2 images.
    """
    if column not in scores.columns:
        return pd.Series(dtype="int64", name="bin")
    scored = scores[["image_id", column]].dropna().drop_duplicates("image_id")
    k = min(bins, len(scored))
    if k < 2:
        return pd.Series(dtype="int64", name="bin")
    ranks = scored[column].rank(method="first")
    labels = pd.qcut(ranks, k, labels=False).astype("int64") + 1
    return pd.Series(labels.to_numpy(), index=scored["image_id"].astype(str).to_numpy(), name="bin")


def assign_halves(scores: pd.DataFrame, *, column: str = "atypicality") -> pd.Series:
    """'typical' (<= median of the scored images) or 'atypical' (> median), by image_id."""
    if column not in scores.columns:
        return pd.Series(dtype="object", name="half")
    scored = scores[["image_id", column]].dropna().drop_duplicates("image_id")
    if scored.empty:
        return pd.Series(dtype="object", name="half")
    median = float(scored[column].median())
    halves = np.where(scored[column].to_numpy(dtype=float) <= median, "typical", "atypical")
    return pd.Series(halves, index=scored["image_id"].astype(str).to_numpy(), name="half")


def decile_table(
    joined: pd.DataFrame, bins: pd.Series, *, column: str = "atypicality", seed: int = 0
) -> pd.DataFrame:
    """Per bin: n, range of ``column``, P(change), MAC, accuracy (with CIs) and the two ratios."""
    if bins.empty or joined.empty:
        return pd.DataFrame()
    frame = joined.assign(bin=joined["image_id"].map(bins)).dropna(subset=["bin"])
    if frame.empty:
        return pd.DataFrame()
    overall = group_stats(frame, seed=seed)
    rows = []
    for b, group in frame.groupby("bin", sort=True):
        stats = group_stats(group, seed=seed)
        row = {"bin": int(b), f"{column}_min": float(group[column].min()), f"{column}_max": float(group[column].max())}
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
