"""Every table's columns and dtypes, defined once (docs/architecture.md lists the files).

A schema maps column name -> pandas dtype ("str" is pandas' default text dtype; the invariance
tables use "string", the ``pd.NA`` variant, as they always have); ``conform(frame, schema)`` puts a frame in that
order with those dtypes (missing columns are an error, not a silent NaN column).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from biasprobe.core.errors import InputError

__all__ = [
    "BOX_FEATURES",
    "FIRST_VIEWS_TABLE",
    "IDS_TABLE",
    "INVARIANCE_TABLE",
    "LAYERS_TABLE",
    "POSITIONS_TABLE",
    "SCORES_TABLE",
    "SCORES_WITH_BOXES",
    "SHIFT_DISTANCE_TABLE",
    "SKIPPED_TABLE",
    "TRAINING_BOXES_TABLE",
    "VIEWS_TABLE",
    "Schema",
    "conform",
]

Schema = Mapping[str, str]

BOX_FEATURES: tuple[str, str, str] = ("box_cx", "box_cy", "box_log_size")
"""Normalised box centre and log relative size (docs/protocols.md section 4)."""

SKIPPED_TABLE: Schema = {"path": "str", "reason": "str"}
"""``X.skipped.parquet``: one row per input that could not be used."""

IDS_TABLE: Schema = {
    "image_id": "str", "path": "str", "file": "str", "label": "Int64", "label_name": "object",
    "position": "int64", **dict.fromkeys(BOX_FEATURES, "float64"),
}  # fmt: skip
"""An index's ``ids.parquet`` (and each shard's ``ids_XXXX.parquet``), row-aligned with the embeddings."""

TRAINING_BOXES_TABLE: Schema = {
    "image_id": "str", "path": "str", "file": "str", **dict.fromkeys(BOX_FEATURES, "float64"),
}  # fmt: skip
"""An index's ``boxes.parquet``: the training images' box features."""

SCORES_TABLE: Schema = {
    "image_id": "str", "path": "str", "label": "Int64", "label_name": "object", "knn_dist": "float64",
    "atypicality": "float64", "in_train": "bool", "neighbor_ids": "object", "neighbor_paths": "object",
    "neighbor_dists": "object",
}  # fmt: skip
"""``biasprobe score``: one row per image; with boxes, ``BOX_FEATURES`` and ``pose_atypicality`` follow."""

SCORES_WITH_BOXES: Schema = {**SCORES_TABLE, **dict.fromkeys(BOX_FEATURES, "float64"), "pose_atypicality": "float64"}
"""``biasprobe score`` when the images have boxes and the index a box density."""

INVARIANCE_TABLE: Schema = {
    "image_id": "string", "path": "string", "label": "Int64", "protocol": "string", "model": "string",
    "pairs": "int64", "flips": "int64", "p_change": "float64", "consistency": "float64",
    "mac_top1": "float64", "mac_true": "float64", "prob_range": "float64", "n_labels": "int64",
    "correct0": "boolean", "frac_correct": "float64", "top0": "int64", "p_top0": "float64",
    "label_name": "string", "top0_name": "string",
}  # fmt: skip
"""``biasprobe invariance``: one row per image and protocol (docs/protocols.md section 3)."""

VIEWS_TABLE: Schema = {
    "image_id": "string", "protocol": "string", "t": "int64", "top1": "int64", "p_k0": "float64",
    "p_true": "float64", "knn_dist": "float64", "dx": "int64", "dy": "int64",
}  # fmt: skip
"""``X.views.parquet``: one row per view."""

LAYERS_TABLE: Schema = {
    "image_id": "string", "path": "string", "protocol": "string", "model": "string", "probe": "string",
    "depth": "int64", "stride": "int64", "channels": "int64", "change_1": "float64", "change_aligned": "float64",
}  # fmt: skip
"""``biasprobe layers``: one row per image, protocol and probe point (docs/protocols.md section 7)."""

FIRST_VIEWS_TABLE: Schema = {"image_id": "string", "protocol": "string"}
"""A layers unit's ``part_NNNNNN.first.parquet``: whose first-view features each row of ``first.npy`` holds."""

SHIFT_DISTANCE_TABLE: Schema = {
    "model": "string", "protocol": "string", "d": "int64", "pairs": "int64", "differs": "int64",
    "p_differs": "float64", "ci_low": "float64", "ci_high": "float64",
}  # fmt: skip
"""Shift-distance curves (docs/protocols.md section 7.5): P(top-1 differs) between views d apart."""


POSITIONS_TABLE: Schema = {
    "image_id": "string", "path": "string", "label": "Int64", "model": "string", "step": "int64",
    "gx": "int64", "gy": "int64", "x": "float64", "y": "float64", "top1": "int64", "p_true": "float64",
    "correct": "boolean", "p_top0": "float64", "pairs": "int64", "flips": "int64",
}  # fmt: skip
"""``biasprobe positions``: one row per image and grid position (docs/protocols.md section 8)."""


def conform(frame: pd.DataFrame, schema: Schema, *, what: str = "table") -> pd.DataFrame:
    """``frame`` with exactly the schema's columns, in its order and dtypes (index reset)."""
    missing = [c for c in schema if c not in frame.columns]
    if missing and len(frame.columns):
        raise InputError(f"{what} lacks the columns {missing}")
    if missing:  # an empty frame without columns: build the empty table
        frame = pd.DataFrame({c: pd.Series(dtype=d) for c, d in schema.items()})
    return frame[list(schema)].astype(dict(schema)).reset_index(drop=True)
