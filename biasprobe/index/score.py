"""The score stage: images -> one row per image with knn_dist, atypicality, in_train and, with
boxes, pose atypicality (docs/protocols.md section 4)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.io import companion, write_table
from biasprobe.core.schemas import BOX_FEATURES, SCORES_TABLE, SCORES_WITH_BOXES, SKIPPED_TABLE, conform
from biasprobe.core.skipped import no_usable_images, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageSource, attach_boxes
from biasprobe.engine.runtime import Runtime
from biasprobe.index.embed import embed_records
from biasprobe.index.pose import box_features
from biasprobe.index.summaries import IndexSummary, ScoreSummary
from biasprobe.index.training_index import TrainingIndex
from biasprobe.models import ProbeModel

__all__ = ["QUANTILES", "ScoreResult", "score_images"]

log = logging.getLogger(__name__)

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


@dataclass(frozen=True)
class ScoreResult:
    """Scores of one image set: the table, the skipped inputs, the summary."""

    frame: pd.DataFrame
    skipped: pd.DataFrame
    summary: ScoreSummary

    def write(self, path: str | Path) -> Path:
        """Write ``FILE.parquet`` with its companions ``.summary.json`` and ``.skipped.parquet``."""
        path = Path(path)
        write_table(self.skipped, companion(path, "skipped"))
        self.summary.write(companion(path, "summary"))
        return write_table(self.frame, path)


def score_images(
    index: TrainingIndex,
    source: ImageSource,
    model: ProbeModel,
    *,
    k: int = 10,
    boxes: str | Path | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    show_progress: bool = True,
    command: list[str] | None = None,
) -> ScoreResult:
    """Score every image of ``source`` against ``index`` (one row per usable image)."""
    index.check_model(model)
    index.reference_knn_dist(k=k)  # refuses a k the reference cannot serve, before any work
    if boxes is not None:
        source = attach_boxes(source, boxes)
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    batches, emb = embed_records(source.records, model, runtime, batch_size=batch_size, workers=workers, show_progress=show_progress)
    records = [r for b in batches for r in b.records]
    ids = [i for b in batches for i in b.image_ids]
    skipped = skipped_frame([*source.skipped, *(s for b in batches for s in b.skipped)])
    skipped = conform(skipped, SKIPPED_TABLE, what="the skipped inputs")
    if not records:
        raise no_usable_images(len(source.records), source.name, skipped)
    dists, rows = index.knn(emb, k=k, image_ids=ids)
    knn_dist = dists.astype(np.float64).mean(axis=1)
    frame = pd.DataFrame({
        "image_id": ids,
        "path": [r.relative for r in records],
        "label": pd.array([r.label for r in records], dtype="Int64"),
        "label_name": pd.Series([r.label_name for r in records], dtype=object),
        "knn_dist": knn_dist,
        "atypicality": index.atypicality(knn_dist, k=k),
        "in_train": index.in_train(ids),
        "neighbor_ids": [list(index.ids[r]) for r in rows],
        "neighbor_paths": [list(index.paths[r]) for r in rows],
        "neighbor_dists": [list(map(float, d)) for d in dists],
    })
    schema = SCORES_TABLE
    has_boxes = any(r.box is not None for r in records)
    if index.pose is not None and has_boxes:
        feats = box_features([r.box for r in records])
        for i, name in enumerate(BOX_FEATURES):
            frame[name] = feats[:, i]
        frame["pose_atypicality"] = index.pose.pose_atypicality(feats)
        schema = SCORES_WITH_BOXES
    elif has_boxes:
        log.info("boxes given for the images but the index has none: no pose_atypicality")
    frame = conform(frame, schema, what="the scores")
    summary = _summary(index, frame, skipped, k=k, command=command, images_root=source.images_root)
    return ScoreResult(frame, skipped, summary)


def _summary(index: TrainingIndex, frame: pd.DataFrame, skipped: pd.DataFrame, *, k: int, command: list[str] | None,
             images_root: str) -> ScoreSummary:
    quantiles = frame["knn_dist"].quantile(list(QUANTILES))
    return ScoreSummary(
        index=IndexSummary.of(str(index.folder), index.meta),
        k=k,
        images=len(frame),
        skipped=len(skipped),
        in_train=int(frame["in_train"].sum()),
        knn_dist_quantiles={f"{q:g}": float(v) for q, v in quantiles.items()},
        atypicality_mean=float(frame["atypicality"].mean()),
        pose_atypicality="pose_atypicality" in frame.columns,
        versions=library_versions(),
        command=tuple(command) if command is not None else None,
        images_root=images_root,
    )
