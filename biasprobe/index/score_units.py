"""The score stage's unit of work: embed a unit's images, search the index, write the unit's rows.

Unit ``i`` (images ``[i * unit_size, (i + 1) * unit_size)`` of the source) writes, into the
parts folder (``S.parts/`` beside ``S.parquet``)::

    part_000003.parquet          its rows of the score table (core.schemas.SCORES_TABLE, and the
                                 box features and pose_atypicality when the index has a box density)
    part_000003.skipped.parquet  path, reason

then is marked done (``engine.units``). Every column of a row depends on that image alone
(its embedding, its exact neighbours, the index's reference), and batches restart at every
unit, so the rows are the same whichever units ran together, wherever they ran.
``ScoreRecipe`` is the work as picklable values for a worker elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from biasprobe.core.io import companion, read_table, write_table
from biasprobe.core.schemas import BOX_FEATURES, SCORES_TABLE, SCORES_WITH_BOXES, SKIPPED_TABLE, conform
from biasprobe.core.skipped import skipped_frame
from biasprobe.data.sources import ImageRecord
from biasprobe.engine.runner import WorkerSetup
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import Finished, Unit, consecutive_runs
from biasprobe.index.embed import EmbeddedBatch
from biasprobe.index.pose import box_features
from biasprobe.index.shards import embedded_units
from biasprobe.index.training_index import TrainingIndex
from biasprobe.models import ModelFactory, ProbeModel

__all__ = ["LIST_COLUMNS", "ScoreRecipe", "ScoreWork", "read_score_part", "score_part_files"]

LIST_COLUMNS = ("neighbor_ids", "neighbor_paths", "neighbor_dists")
"""Columns holding one list per row."""


def score_part_files(parts_dir: Path, unit: int) -> tuple[Path, Path]:
    """The rows of unit ``unit`` and its skipped inputs."""
    rows = parts_dir / f"part_{unit:06d}.parquet"
    return rows, companion(rows, "skipped")


def _part_schema(index: TrainingIndex) -> dict[str, str]:
    return dict(SCORES_WITH_BOXES if index.pose is not None else SCORES_TABLE)


def read_score_part(parts_dir: Path, unit: int, index: TrainingIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One finished unit's rows (list columns as Python lists, as scoring made them) and skipped inputs."""
    rows_path, skipped_path = score_part_files(parts_dir, unit)
    rows = conform(read_table(rows_path), _part_schema(index), what=str(rows_path))
    for column in LIST_COLUMNS:
        rows[column] = pd.Series([list(v.tolist()) for v in rows[column]], dtype=object, index=rows.index)
    return rows, conform(read_table(skipped_path), SKIPPED_TABLE, what=str(skipped_path))


def _rows(index: TrainingIndex, batches: list[EmbeddedBatch], k: int) -> pd.DataFrame:
    """The score rows of a unit's usable images (docs/protocols.md section 4)."""
    records = [r for b in batches for r in b.records]
    ids = [i for b in batches for i in b.image_ids]
    arrays = [b.embeddings for b in batches if len(b.records)]
    emb = np.concatenate(arrays) if arrays else np.zeros((0, index.store.dim), np.float32)
    dists, rows = index.knn(emb, k=k, image_ids=ids)
    knn_dist = dists.astype(np.float64).mean(axis=1)
    frame = pd.DataFrame({
        "image_id": pd.Series(ids, dtype=object),
        "path": pd.Series([r.relative for r in records], dtype=object),
        "label": pd.array([r.label for r in records], dtype="Int64"),
        "label_name": pd.Series([r.label_name for r in records], dtype=object),
        "knn_dist": knn_dist,
        "atypicality": index.atypicality(knn_dist, k=k),
        "in_train": index.in_train(ids),
        "neighbor_ids": pd.Series([list(index.ids[r]) for r in rows], dtype=object),
        "neighbor_paths": pd.Series([list(index.paths[r]) for r in rows], dtype=object),
        "neighbor_dists": pd.Series([list(map(float, d)) for d in dists], dtype=object),
    })  # fmt: skip
    if index.pose is not None:  # the stage keeps these columns only when some image has a box
        feats = box_features([r.box for r in records])
        for i, name in enumerate(BOX_FEATURES):
            frame[name] = feats[:, i]
        frame["pose_atypicality"] = index.pose.pose_atypicality(feats)
    return conform(frame, _part_schema(index), what="a unit's scores")


@dataclass
class ScoreWork:
    """Everything a runner needs to score any units of one run (``engine.units.UnitWork``)."""

    index: TrainingIndex
    model: ProbeModel
    runtime: Runtime
    records: Sequence[ImageRecord]
    k: int
    batch_size: int
    unit_size: int
    parts_dir: Path
    workers: int | None = None
    bar: tqdm | None = None

    def run(self, units: Sequence[Unit], finished: Finished) -> None:
        """Score consecutive ``units`` in one pass, writing each unit's part, then ``finished``."""
        for run in consecutive_runs(units):
            for unit, batches in embedded_units(self.records, self.model, self.runtime, run, batch_size=self.batch_size,
                                                unit_size=self.unit_size, workers=self.workers, progress=self.bar):
                rows_path, skipped_path = score_part_files(self.parts_dir, unit.number)
                skipped = skipped_frame([s for b in batches for s in b.skipped])
                write_table(conform(skipped, SKIPPED_TABLE, what="a unit's skipped inputs"), skipped_path)
                write_table(_rows(self.index, batches, self.k), rows_path)
                finished(unit, [rows_path, skipped_path])

    def recipe(self) -> ScoreRecipe:
        """This work as picklable values, for a worker elsewhere (the index travels as its folder)."""
        return ScoreRecipe(self.index, ModelFactory.of(self.model), self.records, self.k, self.batch_size, self.unit_size,
                           self.parts_dir.resolve(), self.workers)


@dataclass(frozen=True)
class ScoreRecipe:
    """``ScoreWork`` as picklable values: a ``TrainingIndex`` pickles as its folder and is opened
    again where it is unpickled; the model is built from its factory."""

    index: TrainingIndex
    model: ModelFactory
    records: Sequence[ImageRecord]
    k: int
    batch_size: int
    unit_size: int
    parts_dir: Path
    workers: int | None

    def build(self, setup: WorkerSetup) -> ScoreWork:
        model = setup.runtime.prepare(self.model.build())
        workers = self.workers if self.workers is not None else setup.decode_workers
        return ScoreWork(self.index, model, setup.runtime, self.records, self.k, self.batch_size, self.unit_size,
                         self.parts_dir, workers)
