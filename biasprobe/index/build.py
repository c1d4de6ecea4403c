"""The Python API of the first two jobs: build a training index, score images against it.

    from biasprobe.models import create_model
    from biasprobe.data.sources import open_source
    from biasprobe.index import build_index, score_images

    model = create_model("efficientnet_lite0")
    index = build_index(open_source("train/"), model, "indices/train")
    result = score_images(index, open_source("test/"), model, k=10)
    result.frame            # one row per image (docs/protocols.md section 4)
    result.write("scores.parquet")  # + scores.summary.json, scores.skipped.parquet

A build embeds the images into shards (``shards.embed_to_shards``), builds the FAISS index,
computes the leave-one-out reference with the neighbour search (``Neighbours``), fits the box
density when boxes were given, and writes ``meta.json`` last. ``build.json`` holds the build's
settings: an interrupted build resumes from its finished shards when called again with the
same ones, and is refused with the differing keys named otherwise. ``meta.json`` records the size
and SHA-256 of every other file of the folder (``files.record_files``), checked when it is opened.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.digests import FileDigest
from biasprobe.core.errors import InputError
from biasprobe.core.io import save_npy, write_table
from biasprobe.core.manifest import RunManifest
from biasprobe.core.outputs import check_output_path
from biasprobe.core.schemas import BOX_FEATURES, SKIPPED_TABLE, TRAINING_BOXES_TABLE, conform
from biasprobe.core.skipped import no_usable_images, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageSource
from biasprobe.engine.runner import Engine
from biasprobe.engine.runtime import Runtime
from biasprobe.index.faiss_build import (
    build_faiss_index,
    check_factory,
    choose_factory,
    default_search_params,
    write_index,
)
from biasprobe.index.files import record_files
from biasprobe.index.meta import IndexMeta, ModelSignature
from biasprobe.index.neighbours import ById, Neighbours
from biasprobe.index.pose import PoseDensity
from biasprobe.index.reference import leave_one_out_reference
from biasprobe.index.search import Searcher
from biasprobe.index.shards import DEFAULT_SHARD_SIZE, ShardSet, embed_to_shards
from biasprobe.index.store import VectorStore
from biasprobe.index.torch_knn import TorchNeighbours
from biasprobe.index.training_index import TrainingIndex, search_device
from biasprobe.models import ProbeModel

__all__ = ["build_index", "embedding_dim"]

log = logging.getLogger(__name__)


def embedding_dim(model: ProbeModel) -> int:
    """Width of the embedding (docs/protocols.md section 4.2)."""
    return model.embedding_dim()


def _fit_boxes(table: pd.DataFrame, out: Path) -> PoseDensity | None:
    boxes = table.dropna(subset=list(BOX_FEATURES)).drop_duplicates("image_id")
    if boxes.empty:
        return None
    pose = PoseDensity.fit(boxes[list(BOX_FEATURES)].to_numpy())
    write_table(conform(boxes, TRAINING_BOXES_TABLE, what="the training boxes"), out / "boxes.parquet")
    return pose


def _recorded_files(out: Path, shards: ShardSet, *, boxes: bool) -> dict[str, FileDigest]:
    """Size and SHA-256 of every file of the index but meta.json: the shards' from their done
    markers (recorded when each shard was written), the others' from the files just written."""
    plan_files = ["build.json", "shards/shards.json", *(f"shards/done/{n:06d}.json" for n in shards.numbers)]
    names = [*plan_files, "skipped.parquet", "ids.parquet", "index.faiss", "reference.npy", "reference_rows.npy"]
    known = {f"shards/{name}": digest for name, digest in shards.files.items()}
    return record_files(out, [*names, *known, *(["boxes.parquet"] if boxes else [])], known=known)


def build_index(
    source: ImageSource,
    model: ProbeModel,
    out: str | Path,
    *,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
    factory: str | None = None,
    memory_budget: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    show_progress: bool = True,
    command: list[str] | None = None,
    engine: Engine | None = None,
) -> TrainingIndex:
    """Embed ``source`` into shards under ``out``, build the FAISS index and the reference.

    The shards are embedded on ``engine`` (default: this process; the index is the same on
    every engine). An interrupted build resumes from its finished shards when called again
    with the same arguments; ``meta.json`` is written last.
    """
    out = check_output_path(out, "folder")
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    signature = ModelSignature.of(model)
    settings = {"signature": signature.to_json(), "source": source.name, "records": len(source.records),
                "selection": source.selection, "batch_size": batch_size, "shard_size": shard_size, "factory": factory, "seed": seed}
    if factory is not None:
        check_factory(factory, embedding_dim(model))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "meta.json").is_file():
        raise InputError(f"{out} already holds a built index; choose a new --out folder or delete it first")
    RunManifest.at(out / "build.json", settings).claim(
        what="an unfinished build", hint="resume with the same images, model and flags, or use a new --out folder"
    )
    shards = embed_to_shards(source.records, model, runtime, out / "shards", batch_size=batch_size,
                             shard_size=shard_size, workers=workers, show_progress=show_progress, engine=engine)
    table = shards.ids()
    skipped = pd.concat([skipped_frame(source.skipped), shards.skipped()], ignore_index=True)
    skipped = conform(skipped, SKIPPED_TABLE, what="the skipped inputs")
    write_table(skipped, out / "skipped.parquet")
    if table.empty:
        raise no_usable_images(len(source.records), source.name, skipped)
    write_table(table, out / "ids.parquet")
    store = VectorStore(shards.emb_paths())
    chosen = factory or choose_factory(store.count, store.dim, memory_budget=memory_budget)
    params = default_search_params(chosen)
    log.info("building FAISS index %s over %d x %d (search: %s)", chosen, store.count, store.dim, params or "exact")
    index = build_faiss_index(store, chosen, seed=seed)
    write_index(index, out / "index.faiss")
    ids = table["image_id"].to_numpy(dtype="U16")
    neighbours: ById
    if search_device(runtime.device) is not None:  # the exact torch search on the GPU (seconds, not minutes, at ImageNet size)
        neighbours = TorchNeighbours(ids, store, runtime.device)
    else:
        neighbours = Neighbours(ids, store, Searcher(index, params, store), exact=chosen == "Flat")
    reference, rows, reference_info = leave_one_out_reference(neighbours, seed=seed, progress=show_progress)
    save_npy(reference.astype(np.float32), out / "reference.npy")
    save_npy(rows.astype(np.int64), out / "reference_rows.npy")
    pose = _fit_boxes(table, out)
    meta = IndexMeta(
        signature=signature,
        model_describe=model.describe(),
        dim=store.dim,
        count=store.count,
        distinct_images=neighbours.unique_count,
        skipped=len(skipped),
        factory=chosen,
        search_params=params,
        shards=tuple(p.name for p in shards.emb_paths()),
        shard_size=shard_size,
        batch_size=batch_size,
        source=source.name,
        reference=reference_info,
        boxes=pose.info() if pose is not None else None,
        runtime=runtime.to_dict(),
        versions=library_versions(),
        seed=seed,
        command=tuple(command) if command is not None else None,
        files=_recorded_files(out, shards, boxes=pose is not None),
    )
    meta.write(out / "meta.json")  # last: marks the index finished
    log.info("index written to %s: %d images, %s", out, store.count, chosen)
    return TrainingIndex.open(out)
