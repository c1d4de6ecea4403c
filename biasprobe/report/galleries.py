"""The most and least stable images of one model and protocol as gallery cards: thumbnail,
nearest training images, and the probability-vs-shift curve.

Least stable: highest P(change), then largest probability range, then largest MAC, then largest
kNN distance (when scored), then image id; most stable: the reverse order of the first four keys,
then image id. Ties never depend on the rows' order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from biasprobe.analysis import PAIRED_PROTOCOLS
from biasprobe.report import figures
from biasprobe.report.formatting import fmt, path_parts
from biasprobe.report.inputs import ReportInputs
from biasprobe.report.thumbnails import Thumbnail, thumbnail

__all__ = ["GALLERY_SIZE", "RANK_KEYS", "gallery", "stability_order"]

GALLERY_SIZE = 6
RANK_KEYS = ("p_change", "prob_range", "mac_top1", "knn_dist")
"""Least stable first: each key descending, then image id ascending (``stability_order``)."""

Thumbnailer = Callable[[str, bool], Thumbnail]


def _cached_thumbnails(inputs: ReportInputs) -> Thumbnailer:
    cache: dict[tuple[str, bool], Thumbnail] = {}
    image_roots, neighbour_roots = inputs.image_roots(), inputs.neighbour_roots()

    def get(path: str, neighbour: bool = False) -> Thumbnail:
        key = (path, neighbour)
        if key not in cache:
            cache[key] = thumbnail(path, roots=neighbour_roots if neighbour else image_roots, size=96 if neighbour else 128)
        return cache[key]

    return get


def _card(row: Mapping[str, Any], scores_by_id: Mapping[str, Mapping[str, Any]], views: pd.DataFrame,
          thumb: Thumbnailer) -> dict[str, object]:
    score = scores_by_id.get(row["image_id"], {})
    t = thumb(str(row.get("path", "")), False)
    neighbours = []
    paths = score.get("neighbor_paths")
    dists = score.get("neighbor_dists")
    if paths is not None:
        dists = list(dists) if dists is not None else [float("nan")] * len(paths)
        for p, d in list(zip(paths, dists, strict=False))[:3]:
            nt = thumb(str(p), True)
            neighbours.append({"path": str(p), "dist": fmt(d), "uri": nt.uri, "error": nt.error})
    curve = ""
    if not views.empty and row["protocol"] not in PAIRED_PROTOCOLS:  # zhang views are random pairs, not a sequence
        v = views[(views["image_id"] == row["image_id"]) & (views["protocol"] == row["protocol"])]
        if len(v) >= 2 and "p_k0" in v.columns and "top1" in v.columns:
            curve = figures.shift_curve(v)
    return {
        "path": str(row.get("path", "")), "path_parts": path_parts(str(row.get("path", ""))),
        "image_id": str(row["image_id"]), "uri": t.uri, "error": t.error,
        "label": "" if pd.isna(row.get("label_name")) else str(row.get("label_name", "")),
        "top0": "" if pd.isna(row.get("top0_name")) else str(row.get("top0_name", "")),
        "flips": f"{int(row['flips'])}/{int(row['pairs'])}", "p_change": fmt(row["p_change"]),
        "prob_range": fmt(row.get("prob_range")), "atypicality": fmt(score.get("atypicality"), 2),
        "knn_dist": fmt(score.get("knn_dist")), "neighbours": neighbours, "curve": curve,
        "no_neighbours": "" if paths is not None else (
            "this image is not in the scores table" if scores_by_id
            else "no training index for this image set: no neighbours"),
    }


def stability_order(frame: pd.DataFrame, *, least_stable_first: bool = True) -> pd.DataFrame:
    """``frame`` sorted by ``RANK_KEYS`` (missing keys skipped, NaN last), then image id."""
    keys = [k for k in RANK_KEYS if k in frame.columns]
    values = frame[keys].apply(pd.to_numeric, errors="coerce")
    sign = -1.0 if least_stable_first else 1.0
    columns = [(sign * values[k]).fillna(float("inf")).to_numpy(float) for k in keys]
    order = np.lexsort([frame["image_id"].astype(str).to_numpy(dtype=str), *reversed(columns)])
    return frame.iloc[order]


def gallery(inputs: ReportInputs, model: str, protocol: str, *, warning: str = "") -> dict[str, object]:
    """The ``GALLERY_SIZE`` least and most stable images of ``model`` on ``protocol`` (never one twice)."""
    inv = next(i for i in inputs.invariance if i.model == model)
    frame = inv.table[inv.table["protocol"] == protocol].copy()
    frame["image_id"] = frame["image_id"].astype(str)
    scores_by_id: dict[str, Mapping[str, Any]] = {}
    if inputs.scores is not None:
        scores = inputs.scores.drop_duplicates("image_id")
        scores_by_id = {str(r["image_id"]): r for r in scores.to_dict("records")}
        if "knn_dist" in scores.columns:
            knn = pd.to_numeric(scores["knn_dist"], errors="coerce").set_axis(scores["image_id"].astype(str))
            frame["knn_dist"] = frame["image_id"].map(knn)
    thumb = _cached_thumbnails(inputs)
    size = min(GALLERY_SIZE, len(frame) // 2) if len(frame) > 1 else len(frame)
    least = stability_order(frame).head(size)  # few images: the two galleries split them, never show one twice
    rest = frame[~frame["image_id"].isin(set(least["image_id"]))]
    most = stability_order(rest, least_stable_first=False).head(size)
    views = inv.views if not inv.views.empty else pd.DataFrame()
    return {
        "model": model, "protocol": protocol, "warning": warning,
        "least": [_card(r, scores_by_id, views, thumb) for r in least.to_dict("records")],
        "most": [_card(r, scores_by_id, views, thumb) for r in most.to_dict("records")],
        "no_views": "" if not views.empty else "no views table beside the invariance file: curves cannot be drawn",
    }
