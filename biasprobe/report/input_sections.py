"""Sections drawn from the inputs alone, before any analysis: object boxes (the photographer's
bias), train/test duplicates and skipped inputs."""

from __future__ import annotations

import pandas as pd

from biasprobe.report import figures
from biasprobe.report.inputs import ReportInputs

__all__ = ["boxes", "duplicates", "skipped"]


def boxes(inputs: ReportInputs) -> dict[str, object]:
    """Box-centre heatmap and size histogram, training vs test, or why there are none."""
    train, test = inputs.boxes_train, inputs.boxes_test
    if train is None and test is None:
        return {"why": "No object boxes are known (give --boxes-train and --boxes-test, or score and index with --boxes)."}
    return {
        "why": "",
        "heatmap": figures.box_centre_heatmap(None if train is None else train[:, :2], None if test is None else test[:, :2]),
        "sizes": figures.box_size_histogram(None if train is None else train[:, 2], None if test is None else test[:, 2]),
        "n_train": 0 if train is None else len(train), "n_test": 0 if test is None else len(test),
    }


def duplicates(scores: pd.DataFrame | None) -> dict[str, object]:
    """The scored images byte-identical to a training image (``in_train``), the first 50 listed."""
    if scores is None or "in_train" not in scores.columns:
        return {"why": "No in_train column in the scores table.", "rows": [], "n": 0}
    dup = scores[scores["in_train"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    rows = [{"path": str(r.get("path", "")), "image_id": str(r["image_id"])} for r in dup.head(50).to_dict("records")]
    return {"why": "", "rows": rows, "n": len(dup), "total": len(scores)}


def skipped(inputs: ReportInputs) -> list[dict[str, str]]:
    """Every input a stage skipped, with the stage and the reason: the index build's (with
    --index), the score's, then each invariance table's."""
    rows = []
    sources = [("index build", inputs.index_skipped), ("score", inputs.scores_skipped)]
    sources += [(f"invariance {i.model}", i.skipped) for i in inputs.invariance]
    for source, table in sources:
        if table.empty:
            continue
        for r in table.to_dict("records"):
            rows.append({"stage": source, "path": str(r.get("path", "")), "reason": str(r.get("reason", ""))})
    return rows
