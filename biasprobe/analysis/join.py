"""One table to analyse: invariance rows with the scores table's atypicality joined by image id.

One atypicality axis is used for every model: the ``biasprobe score`` table's columns, joined
to each ``biasprobe invariance`` row (one per image and protocol, possibly several models
concatenated) by ``image_id``.
"""

from __future__ import annotations

import pandas as pd

from biasprobe.core.errors import InputError

__all__ = ["SCORE_COLUMNS", "join_scores"]

SCORE_COLUMNS = ("atypicality", "pose_atypicality", "knn_dist", "in_train")


def join_scores(scores: pd.DataFrame | None, invariance: pd.DataFrame) -> pd.DataFrame:
    """Invariance rows with the scores table's atypicality columns joined by ``image_id``."""
    missing = {"image_id", "protocol", "flips", "pairs", "mac_top1", "p_change"} - set(invariance.columns)
    if missing:
        raise InputError(
            f"invariance table lacks columns {sorted(missing)}; expected the output of 'biasprobe invariance'"
        )
    out = invariance.copy()
    if "model" not in out.columns:
        out["model"] = "model"
    out["image_id"] = out["image_id"].astype(str)
    if scores is None:
        return out
    if "image_id" not in scores.columns or "atypicality" not in scores.columns:
        raise InputError("scores table lacks image_id/atypicality; expected the output of 'biasprobe score'")
    keep = ["image_id", *[c for c in SCORE_COLUMNS if c in scores.columns]]
    right = scores[keep].drop_duplicates("image_id").copy()
    right["image_id"] = right["image_id"].astype(str)
    out = out.drop(columns=[c for c in keep[1:] if c in out.columns])
    return out.merge(right, on="image_id", how="left")
