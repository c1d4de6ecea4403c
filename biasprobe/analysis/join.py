"""One table to analyse: invariance rows with the scores table's atypicality joined by image id.

One atypicality axis is used for every model: the ``biasprobe score`` table's columns, joined
to each ``biasprobe invariance`` row (one per image and protocol, possibly several models
concatenated) by ``image_id``. The joined rows come in one order whatever order the tables were
written in: models as given, protocols in docs/protocols.md section 2.2's order, images by id.
"""

from __future__ import annotations

import pandas as pd

from biasprobe.analysis.order import canonical_rows, protocol_order
from biasprobe.core.errors import InputError

__all__ = ["SCORE_COLUMNS", "join_scores", "sort_joined"]

SCORE_COLUMNS = ("atypicality", "pose_atypicality", "knn_dist", "in_train")


def sort_joined(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by model (first appearance), protocol (``order.protocol_order``), then image id."""
    models = {m: i for i, m in enumerate(dict.fromkeys(frame["model"].astype(str)))}
    protocols = {p: i for i, p in enumerate(protocol_order(list(dict.fromkeys(frame["protocol"].astype(str)))))}
    rows = canonical_rows(frame)
    group = rows["model"].astype(str).map(models) * len(protocols) + rows["protocol"].astype(str).map(protocols)
    return rows.iloc[group.to_numpy().argsort(kind="stable")].reset_index(drop=True)


def join_scores(scores: pd.DataFrame | None, invariance: pd.DataFrame) -> pd.DataFrame:
    """Invariance rows with the scores table's atypicality columns joined by ``image_id``, in the
    order of ``sort_joined``."""
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
        return sort_joined(out)
    if "image_id" not in scores.columns or "atypicality" not in scores.columns:
        raise InputError("scores table lacks image_id/atypicality; expected the output of 'biasprobe score'")
    keep = ["image_id", *[c for c in SCORE_COLUMNS if c in scores.columns]]
    right = scores[keep].drop_duplicates("image_id").copy()
    right["image_id"] = right["image_id"].astype(str)
    out = out.drop(columns=[c for c in keep[1:] if c in out.columns])
    return sort_joined(out.merge(right, on="image_id", how="left"))
