"""The score stage: images -> one row per image with knn_dist, atypicality, in_train and, with
boxes, pose atypicality (docs/protocols.md section 4).

``score_images`` cuts the source into units of ``unit_size`` images (``engine.units``), runs
the pending ones on an ``Engine`` (``score_units.ScoreWork``: embed, search, write the unit's
rows) and assembles the table and its summary from the units' part files. ``run_scores``
keeps the parts in ``S.parts/`` so an interrupted run resumes from whichever units finished,
then writes ``S.parquet`` and its companions and removes the parts.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from biasprobe.core.digests import FileDigest
from biasprobe.core.errors import InputError, NoUsableImageError
from biasprobe.core.io import write_with_companions
from biasprobe.core.manifest import RunManifest
from biasprobe.core.outputs import check_output_path
from biasprobe.core.schemas import BOX_FEATURES, SCORES_TABLE, SCORES_WITH_BOXES, SKIPPED_TABLE, conform
from biasprobe.core.skipped import no_usable_images, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageRecord, ImageSource, attach_boxes
from biasprobe.engine.runner import Engine
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import UnitPlan, parts_dir_for, parts_folder
from biasprobe.index.score_units import ScoreWork, read_score_part
from biasprobe.index.summaries import IndexSummary, ScoreSummary
from biasprobe.index.training_index import TrainingIndex
from biasprobe.models import ProbeModel

__all__ = ["DEFAULT_UNIT_SIZE", "QUANTILES", "ScoreResult", "run_scores", "score_images"]

log = logging.getLogger(__name__)

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

DEFAULT_UNIT_SIZE = 1024
"""Images per unit of scoring (a multiple of the default batch size)."""


@dataclass(frozen=True)
class ScoreResult:
    """Scores of one image set: the table, the skipped inputs, the summary."""

    frame: pd.DataFrame
    skipped: pd.DataFrame
    summary: ScoreSummary

    def write(self, path: str | Path) -> Path:
        """Write ``FILE.parquet`` with its companions ``.summary.json`` and ``.skipped.parquet``."""
        return write_with_companions(path, self.frame, skipped=self.skipped, summary=self.summary)


def _records_digest(records: list[ImageRecord]) -> str:
    """SHA-256 of what the rows take from the records: paths, labels, boxes."""
    text = repr([(r.relative, r.label, r.label_name, r.box) for r in records])
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


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
    parts_dir: str | Path | None = None,
    unit_size: int = DEFAULT_UNIT_SIZE,
    engine: Engine | None = None,
) -> ScoreResult:
    """Score every image of ``source`` against ``index`` (one row per usable image).

    ``parts_dir`` makes the run resumable: finished units of ``unit_size`` images are kept there
    and skipped by a re-run with the same settings (a temporary folder otherwise; give one that
    every worker can reach when ``engine`` runs units on other machines). ``engine`` runs the
    units (default: this process); the table is the same on every engine.
    """
    index.check_model(model)
    index.reference_knn_dist(k=k)  # refuses a k the reference cannot serve, before any work
    if batch_size < 1 or unit_size < 1:
        raise InputError(f"batch size and unit size must be at least 1, got {batch_size} and {unit_size}")
    if boxes is not None:
        source = attach_boxes(source, boxes)
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    records = list(source.records)
    settings = {
        "index": str(index.folder.resolve()), "index_meta_sha256": FileDigest.of_file(index.folder / "meta.json").sha256,
        "model": model.describe(), "k": k, "batch_size": batch_size, "unit_size": unit_size,
        "precision": runtime.precision, "images": len(records), "records_sha256": _records_digest(records),
    }  # fmt: skip
    with parts_folder(parts_dir) as folder:
        RunManifest.at(folder / "run.json", settings).claim(
            what="a partial score run", hint="delete that folder to start again, or re-run with the same settings to resume"
        )
        plan = UnitPlan(folder, count=len(records), size=unit_size)
        pending = plan.pending()  # a finished unit whose part files changed since is scored again
        done = sum(u.size for u in plan.units if u not in pending)
        if done and parts_dir is not None:
            log.info("resuming: %d of %d images already scored in %s", done, len(records), folder)
        with tqdm(total=len(records), initial=done, desc="score", unit="img", disable=not show_progress) as bar:
            work = ScoreWork(index, model, runtime, records, k, batch_size, unit_size, folder, workers, bar)
            (engine or Engine()).run(work, plan, units=pending, progress=bar.update)
        parts = [read_score_part(folder, unit.number, index) for unit in plan.units]
    skipped = pd.concat([skipped_frame(source.skipped), *(p[1] for p in parts)], ignore_index=True)
    skipped = conform(skipped, SKIPPED_TABLE, what="the skipped inputs")
    frame = pd.concat([p[0] for p in parts], ignore_index=True)
    if frame.empty:
        raise no_usable_images(len(records), source.name, skipped)
    schema = SCORES_TABLE
    if index.pose is not None and frame[list(BOX_FEATURES)].notna().to_numpy().any():
        schema = SCORES_WITH_BOXES
    elif index.pose is None and any(r.box is not None for r in records):
        log.info("boxes given for the images but the index has none: no pose_atypicality")
    frame = conform(frame, schema, what="the scores")
    summary = _summary(index, frame, skipped, k=k, command=command, images_root=source.images_root)
    return ScoreResult(frame, skipped, summary)


def run_scores(
    index: TrainingIndex,
    source: ImageSource,
    model: ProbeModel,
    out: str | Path,
    *,
    k: int = 10,
    boxes: str | Path | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    show_progress: bool = True,
    command: list[str] | None = None,
    unit_size: int = DEFAULT_UNIT_SIZE,
    engine: Engine | None = None,
) -> ScoreResult:
    """``score_images`` resumable through ``S.parts/``, then ``S.parquet`` and its companions
    written and the parts removed. ``out`` is checked before any work; when no image could be
    used, the parts are removed and nothing is written."""
    out = check_output_path(out, "table")
    parts = parts_dir_for(out)
    try:
        result = score_images(index, source, model, k=k, boxes=boxes, runtime=runtime, batch_size=batch_size,
                              workers=workers, show_progress=show_progress, command=command, parts_dir=parts,
                              unit_size=unit_size, engine=engine)  # fmt: skip
    except NoUsableImageError:
        shutil.rmtree(parts, ignore_errors=True)  # nothing in it is worth resuming
        raise
    result.write(out)
    shutil.rmtree(parts, ignore_errors=True)
    return result


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
