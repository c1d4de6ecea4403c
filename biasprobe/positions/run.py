"""The positions stage: every image's object at every grid position, through the model
(docs/protocols.md section 8).

``measure_positions`` cuts the source into units of ``chunk_images`` images (``engine.units``);
each unit streams its images (decoded and cut to the object in background workers,
``engine.stream``), batches their positions through the model (``views.PositionEngine``),
flushes at the unit's end and writes its part files before its done marker. ``run_positions``
keeps the parts in ``X.parts/`` so an interrupted run resumes from whichever units finished,
then writes ``X.parquet``, ``X.summary.json`` and ``X.skipped.parquet`` and removes the parts.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.errors import InputError, NoUsableImageError
from biasprobe.core.io import companion, read_table, write_table, write_with_companions
from biasprobe.core.manifest import RunManifest
from biasprobe.core.outputs import check_output_path
from biasprobe.core.schemas import POSITIONS_TABLE, SKIPPED_TABLE, conform
from biasprobe.core.skipped import Skipped, no_usable_images, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageRecord, ImageSource
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.engine.units import Finished, Unit, UnitPlan, parts_dir_for, parts_folder, run_local
from biasprobe.invariance.protocols import ProtocolParams
from biasprobe.models.spec import ProbeModel
from biasprobe.positions.maps import TrainingCentres
from biasprobe.positions.summary import PositionsSummary, positions_block
from biasprobe.positions.views import ObjectSettings, PositionEngine, PositionTask, image_rows, prepare_object

__all__ = ["DEFAULT_CHUNK_IMAGES", "PositionsResult", "measure_positions", "run_positions", "write_result"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_IMAGES = 32


@dataclass(frozen=True)
class PositionsResult:
    """The three outputs of the stage."""

    table: pd.DataFrame
    skipped: pd.DataFrame
    summary: PositionsSummary


def _part_files(folder: Path, unit: int) -> tuple[Path, Path]:
    rows = folder / f"part_{unit:06d}.parquet"
    return rows, companion(rows, "skipped")


@dataclass
class PositionsWork:
    """Everything a runner needs to measure any units of one positions run."""

    model: ProbeModel
    runtime: Runtime
    records: Sequence[ImageRecord]
    settings: ObjectSettings
    batch_size: int
    parts_dir: Path
    workers: int | None = None
    progress: Callable[[int], object] | None = None

    def run(self, units: Sequence[Unit], finished: Finished) -> None:
        """Measure consecutive ``units`` in one pass, writing each unit's part, then ``finished``."""
        prepare = functools.partial(prepare_object, settings=self.settings)
        stream = iter_prepared(self.records[: units[-1].stop], prepare, start=units[0].start, workers=self.workers,
                               prefetch=4)  # fmt: skip
        engine = PositionEngine(self.model, self.runtime, self.batch_size)
        for unit in units:
            skipped: list[Skipped] = []
            for _ in range(unit.size):
                item = next(stream)
                if isinstance(item, Prepared):
                    grid = self.settings.grid(item.tensor)
                    probs = np.zeros((len(grid), self.model.num_classes), dtype=np.float32)
                    engine.add(PositionTask(item.position, item.record, item.image_id, item.tensor, grid, probs))
                else:
                    skipped.append(item[1])
                if self.progress is not None:
                    self.progress(1)
            frames = [image_rows(task, self.model) for task in engine.flush()]  # batches never cross a unit
            rows = conform(pd.concat(frames) if frames else pd.DataFrame(), POSITIONS_TABLE)
            rows_path, skipped_path = _part_files(self.parts_dir, unit.number)
            write_table(skipped_frame(skipped), skipped_path)
            write_table(rows, rows_path)
            finished(unit, [rows_path, skipped_path])


def measure_positions(
    model: ProbeModel,
    source: ImageSource,
    *,
    step: int | None = None,
    embed_size: int | None = None,
    training: TrainingCentres | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    seed: int = 0,
    parts_dir: str | Path | None = None,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> PositionsResult:
    """Every image's object at every grid position (docs/protocols.md section 8).

    ``step`` fixes the grid step (default: per image, 1 pixel or the smallest step keeping at
    most 48 positions per axis); ``training`` (the training objects' centres) adds the density
    correlations to the summary. ``parts_dir`` makes the run resumable.
    """
    prep = model.preprocessing
    params = ProtocolParams.for_model(prep, embed_size=embed_size)
    if not 1 <= params.embed_size <= params.input_size:
        raise InputError(f"--embed-size must be in 1..{params.input_size} (the input size), got {params.embed_size}")
    if step is not None and step < 1:
        raise InputError(f"--step must be at least 1, got {step}")
    if batch_size < 1 or chunk_images < 1:
        raise InputError(f"batch size and chunk size must be at least 1, got {batch_size} and {chunk_images}")
    settings = ObjectSettings(params.input_size, params.embed_size, prep.resize_size, step)
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    records = source.records
    manifest = {
        "model": model.describe(), "object": asdict(settings), "batch_size": batch_size, "chunk_images": chunk_images,
        "precision": runtime.precision, "images": [r.relative for r in records],
        "boxes": [None if r.box is None else list(r.box.__dict__.values()) for r in records],
    }  # fmt: skip
    from tqdm.auto import tqdm

    with parts_folder(parts_dir) as folder:
        RunManifest.at(folder / "run.json", manifest).claim(
            what="a partial run", hint="delete that folder to start again, or re-run with the same settings to resume"
        )
        plan = UnitPlan(folder, count=len(records), size=chunk_images)
        pending = plan.pending()
        done = [u for u in plan.units if u not in pending]
        if done and parts_dir is not None:
            log.info("resuming: %d of %d units already done in %s", len(done), len(plan.units), folder)
        bar = tqdm(total=len(records), initial=sum(u.size for u in done), unit="img", desc="positions",
                   file=sys.stderr, disable=not progress)  # fmt: skip
        work = PositionsWork(model, runtime, records, settings, batch_size, folder, workers=workers, progress=bar.update)
        try:
            run_local(work, plan, units=pending)
        finally:
            bar.close()
        parts = [_part_files(folder, unit.number) for unit in plan.units]
        table = conform(pd.concat([read_table(rows) for rows, _ in parts]), POSITIONS_TABLE)
        skipped = conform(pd.concat([skipped_frame(source.skipped), *(read_table(s) for _, s in parts)]), SKIPPED_TABLE)
    if table.empty:
        raise no_usable_images(len(records), source.name, skipped)
    summary = PositionsSummary(
        model=model.describe(),
        parameters={"canvas": params.input_size, "embed_size": params.embed_size, "resize_size": prep.resize_size,
                    "step": step, "batch_size": batch_size, "chunk_images": chunk_images, "bootstrap_seed": seed,
                    "images": len(records), "runtime": runtime.to_dict()},
        positions=positions_block(table, params.input_size, training, seed=seed),
        skipped=len(skipped),
        images_root=source.images_root,
        versions=library_versions(),
        command=list(command) if command is not None else None,
    )  # fmt: skip
    return PositionsResult(table, skipped, summary)


def write_result(result: PositionsResult, out: str | Path) -> Path:
    """Write ``X.parquet`` and its companions ``X.summary.json`` and ``X.skipped.parquet``."""
    return write_with_companions(out, result.table, skipped=result.skipped, summary=result.summary)


def run_positions(
    model: ProbeModel,
    source: ImageSource,
    out: str | Path,
    *,
    step: int | None = None,
    embed_size: int | None = None,
    training: TrainingCentres | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    seed: int = 0,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> PositionsResult:
    """``measure_positions`` resumable through ``X.parts/``, then the three files written.

    ``out`` is checked before any work; when no image could be used, ``X.parts/`` is removed
    and nothing is written.
    """
    out = check_output_path(out, "table")
    parts = parts_dir_for(out)
    try:
        result = measure_positions(
            model, source, step=step, embed_size=embed_size, training=training, runtime=runtime,
            batch_size=batch_size, seed=seed, parts_dir=parts, chunk_images=chunk_images, workers=workers,
            progress=progress, command=command,
        )  # fmt: skip
    except NoUsableImageError:
        shutil.rmtree(parts, ignore_errors=True)  # nothing in it is worth resuming
        raise
    write_result(result, out)
    shutil.rmtree(parts, ignore_errors=True)
    return result
