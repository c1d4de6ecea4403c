"""Embedding shards of an index: the embed stage cut into units of work (``engine.units``).

Shard ``i`` covers source positions ``[i * shard_size, (i + 1) * shard_size)`` and is written as
row-aligned files under ``shards/``::

    emb_0000.npy         float32 (rows, dim), L2-normalised
    ids_0000.parquet     core.schemas.IDS_TABLE: image_id, path (as given), file (absolute), label,
                         label_name, position, box_cx, box_cy, box_log_size (NaN without a box)
    skipped_0000.parquet path, reason

then marked done (``done/000000.json``, with the size and SHA-256 of those three files: a shard
whose files changed since is embedded again). ``EmbedShards`` embeds a run of consecutive shards in
one pass over the images, batches restarting at every shard, so any subset of finished shards
is kept by a re-run and the batch and shard boundaries are those of an uninterrupted run
(docs/protocols.md section 6). The shards run on an ``Engine`` (this process, or Ray workers
that build the same work from ``EmbedShardsRecipe``). ``shards.json`` holds the settings that fix those boundaries; a
re-run with others is refused. Memory stays flat in the number of images.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from biasprobe.core.digests import FileDigest
from biasprobe.core.io import read_table, save_npy, write_table
from biasprobe.core.manifest import RunManifest
from biasprobe.core.schemas import BOX_FEATURES, IDS_TABLE, SKIPPED_TABLE, conform
from biasprobe.core.skipped import skipped_frame
from biasprobe.data.sources import ImageRecord
from biasprobe.engine.runner import Engine, WorkerSetup
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import Finished, Unit, UnitPlan, consecutive_runs
from biasprobe.index.embed import EmbeddedBatch, iter_embedded
from biasprobe.index.pose import box_features
from biasprobe.models import ModelFactory, ProbeModel

__all__ = ["DEFAULT_SHARD_SIZE", "EmbedShards", "EmbedShardsRecipe", "ShardSet", "embed_to_shards", "embedded_units", "shard_files",
           "shard_name"]

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 4096


def shard_name(kind: str, number: int) -> str:
    """``emb_0003.npy``, ``ids_0003.parquet``, ``skipped_0003.parquet``."""
    return f"{kind}_{number:04d}.npy" if kind == "emb" else f"{kind}_{number:04d}.parquet"


def shard_files(folder: Path, number: int) -> list[Path]:
    """The files shard ``number`` writes, in the order it writes them."""
    return [folder / shard_name(kind, number) for kind in ("emb", "skipped", "ids")]


@dataclass(frozen=True)
class ShardSet:
    """The finished shards of an embed stage, in order, and the files their markers recorded
    (relative to ``folder``: name -> size and SHA-256)."""

    folder: Path
    numbers: list[int]
    files: dict[str, FileDigest] = field(default_factory=dict)

    def emb_paths(self) -> list[Path]:
        return [self.folder / shard_name("emb", i) for i in self.numbers]

    def ids(self) -> pd.DataFrame:
        """The id table of every row, row-aligned with the concatenated embeddings."""
        frames = [read_table(self.folder / shard_name("ids", i)) for i in self.numbers]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return conform(table, IDS_TABLE, what="the embedding shards' ids")

    def skipped(self) -> pd.DataFrame:
        frames = [read_table(self.folder / shard_name("skipped", i)) for i in self.numbers]
        table = pd.concat(frames, ignore_index=True) if frames else skipped_frame([])
        return conform(table, SKIPPED_TABLE, what="the embedding shards' skipped inputs")


def _ids_frame(records: list[ImageRecord], image_ids: list[str], positions: list[int]) -> pd.DataFrame:
    boxes = box_features([r.box for r in records])
    frame = pd.DataFrame({
        "image_id": image_ids,
        "path": [r.relative for r in records],
        "file": [r.file for r in records],
        "label": pd.array([r.label for r in records], dtype="Int64"),
        "label_name": pd.Series([r.label_name for r in records], dtype=object),
        "position": np.asarray(positions, dtype=np.int64),
        **{name: boxes[:, i] for i, name in enumerate(BOX_FEATURES)},
    })
    return conform(frame, IDS_TABLE, what="a shard's ids")


def _write_shard(folder: Path, number: int, batches: list[EmbeddedBatch]) -> None:
    """Write shard ``number``'s embeddings, skipped inputs and ids (the ids last)."""
    records = [r for b in batches for r in b.records]
    arrays = [b.embeddings for b in batches if len(b.records)]
    emb = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
    save_npy(emb.astype(np.float32, copy=False), folder / shard_name("emb", number))
    skipped = skipped_frame([s for b in batches for s in b.skipped])
    write_table(conform(skipped, SKIPPED_TABLE, what="a shard's skipped inputs"), folder / shard_name("skipped", number))
    ids = _ids_frame(records, [i for b in batches for i in b.image_ids], [p for b in batches for p in b.positions])
    write_table(ids, folder / shard_name("ids", number))


def embedded_units(
    records: Sequence[ImageRecord],
    model: ProbeModel,
    runtime: Runtime,
    units: Sequence[Unit],
    *,
    batch_size: int,
    unit_size: int,
    workers: int | None = None,
    progress: tqdm | None = None,
) -> Iterator[tuple[Unit, list[EmbeddedBatch]]]:
    """Embed consecutive ``units`` (of ``unit_size`` positions) in one pass over their images;
    yield each unit with its batches, in order, as soon as its last batch is done. Batches
    restart at every unit, so a unit's embeddings do not depend on which units ran with it."""
    waiting = list(units)
    collected: list[EmbeddedBatch] = []
    for batch in iter_embedded(records, model, runtime, batch_size=batch_size, start=waiting[0].start, stop=waiting[-1].stop,
                               boundaries=unit_size, workers=workers, progress=progress):
        while batch.block > waiting[0].number:  # every batch of the first waiting unit is in
            yield waiting.pop(0), collected
            collected = []
        collected.append(batch)
    while waiting:
        yield waiting.pop(0), collected
        collected = []


@dataclass(frozen=True)
class EmbedShards:
    """The embed stage as units of work (``engine.units.UnitWork``): one unit = one shard.

    Holds everything a worker needs (the records, the prepared model, the runtime and the
    settings); ``run`` embeds each run of consecutive units in one pass over their images,
    writes each shard's files as soon as its last batch is done, then calls ``finished``.
    """

    records: Sequence[ImageRecord]
    model: ProbeModel
    runtime: Runtime
    folder: Path
    batch_size: int
    shard_size: int
    workers: int | None = None
    show_progress: bool = True

    def run(self, units: Sequence[Unit], finished: Finished) -> None:
        for run in consecutive_runs(units):
            self._run_consecutive(run, finished)

    def recipe(self) -> EmbedShardsRecipe:
        """This work as picklable values, for a worker elsewhere."""
        return EmbedShardsRecipe(self.records, ModelFactory.of(self.model), self.folder.resolve(), self.batch_size,
                                 self.shard_size, self.workers)

    def _run_consecutive(self, units: list[Unit], finished: Finished) -> None:
        with tqdm(total=units[-1].stop - units[0].start, desc="embed", unit="img", disable=not self.show_progress) as bar:
            for unit, batches in embedded_units(self.records, self.model, self.runtime, units, batch_size=self.batch_size,
                                                unit_size=self.shard_size, workers=self.workers, progress=bar):
                _write_shard(self.folder, unit.number, batches)
                finished(unit, shard_files(self.folder, unit.number))


@dataclass(frozen=True)
class EmbedShardsRecipe:
    """``EmbedShards`` as picklable values: a worker builds the model from its factory."""

    records: Sequence[ImageRecord]
    model: ModelFactory
    folder: Path
    batch_size: int
    shard_size: int
    workers: int | None

    def build(self, setup: WorkerSetup) -> EmbedShards:
        model = setup.runtime.prepare(self.model.build())
        workers = self.workers if self.workers is not None else setup.decode_workers
        return EmbedShards(self.records, model, setup.runtime, self.folder, batch_size=self.batch_size,
                           shard_size=self.shard_size, workers=workers, show_progress=False)


def embed_to_shards(
    records: Sequence[ImageRecord],
    model: ProbeModel,
    runtime: Runtime,
    folder: str | Path,
    *,
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
    workers: int | None = None,
    show_progress: bool = True,
    engine: Engine | None = None,
) -> ShardSet:
    """Embed every record into numbered shards in ``folder``, keeping any finished shards,
    on ``engine`` (default: this process)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layout = {"shard_size": shard_size, "batch_size": batch_size, "records": len(records)}
    RunManifest.at(folder / "shards.json", layout).claim(
        what="embedding shards", hint="use the same images and --batch-size to resume, or a new --out folder"
    )
    plan = UnitPlan(folder, len(records), shard_size)
    pending = plan.pending()  # a finished shard whose files changed since is embedded again
    if len(pending) < len(plan.units):
        log.info("resuming: %d of %d shards already finished", len(plan.units) - len(pending), len(plan.units))
    work = EmbedShards(records, model, runtime, folder, batch_size=batch_size, shard_size=shard_size, workers=workers,
                       show_progress=show_progress)
    engine = engine or Engine()
    with tqdm(total=sum(u.size for u in pending), desc="embed", unit="img", disable=not (show_progress and engine.remote)) as bar:
        engine.run(work, plan, units=pending, progress=bar.update)  # a local run draws its own bar
    files = {name: digest for unit in plan.units for name, digest in plan.files(unit).items()}
    return ShardSet(folder, [u.number for u in plan.units], files)
