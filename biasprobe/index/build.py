"""The Python API of the first two jobs: build a training index, score images against it.

    from biasprobe.models import create_model
    from biasprobe.data.sources import open_source
    from biasprobe.index import build_index, score_images

    model = create_model("efficientnet_lite0")
    index = build_index(open_source("train/"), model, "indices/train")
    result = score_images(index, open_source("test/"), model, k=10)
    result.frame            # one row per image (docs/protocols.md section 4)
    result.write("scores.parquet")  # + scores.summary.json, scores.skipped.parquet
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.errors import IndexMismatchError, InputError
from biasprobe.core.io import atomic_write_bytes, write_json, write_table
from biasprobe.core.skipped import skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageSource
from biasprobe.engine.runtime import Runtime
from biasprobe.index.embed import DEFAULT_SHARD_SIZE, embed_to_shards
from biasprobe.index.faiss_ops import (
    Searcher,
    VectorStore,
    build_faiss_index,
    check_factory,
    choose_factory,
    default_search_params,
    write_index,
)
from biasprobe.index.pose import FEATURE_COLUMNS, PoseDensity
from biasprobe.index.training_index import TrainingIndex, model_signature
from biasprobe.models import ProbeModel

__all__ = ["build_index", "embedding_dim"]

log = logging.getLogger(__name__)

def embedding_dim(model: ProbeModel) -> int:
    """Width of the embedding: the input features of the classifier's last linear layer."""
    return int(dict(model.net.named_modules())[model.embedding_layer].in_features)


def _check_resumable(out: Path, plan: dict[str, object]) -> None:
    if (out / "meta.json").is_file():
        raise InputError(f"{out} already holds a built index; choose a new --out folder or delete it first")
    build = out / "build.json"
    if build.is_file():
        old = json.loads(build.read_text())
        diffs = [key for key in plan if old.get(key) != json.loads(json.dumps(plan[key]))]
        if diffs:
            raise IndexMismatchError(
                f"{out} holds an unfinished build with different {', '.join(diffs)}; "
                "resume with the same images, model and flags, or use a new --out folder"
            )
    write_json(plan, build)


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


def _fit_boxes(table: pd.DataFrame, out: Path) -> PoseDensity | None:
    boxes = table.dropna(subset=list(FEATURE_COLUMNS)).drop_duplicates("image_id")
    if boxes.empty:
        return None
    pose = PoseDensity.fit(boxes[list(FEATURE_COLUMNS)].to_numpy())
    write_table(boxes[["image_id", "path", "file", *FEATURE_COLUMNS]].reset_index(drop=True), out / "boxes.parquet")
    return pose


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
) -> TrainingIndex:
    """Embed ``source`` into shards under ``out``, build the FAISS index and the reference.

    An interrupted build resumes from its finished shards when called again with the same
    arguments; ``meta.json`` is written last.
    """
    out = Path(out)
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)  # type: ignore[assignment]
    signature = model_signature(model)
    plan = {"signature": signature, "source": source.name, "records": len(source.records),
            "batch_size": batch_size, "shard_size": shard_size, "factory": factory, "seed": seed}
    if factory is not None:
        check_factory(factory, embedding_dim(model))
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, plan)
    shards = embed_to_shards(source.records, model, runtime, out / "shards", batch_size=batch_size,
                             shard_size=shard_size, workers=workers, show_progress=show_progress)
    table = shards.ids()
    skipped = pd.concat([skipped_frame(source.skipped), shards.skipped()], ignore_index=True)
    write_table(skipped, out / "skipped.parquet")
    if table.empty:
        first = f" (e.g. {skipped.path.iloc[0]}: {skipped.reason.iloc[0]})" if len(skipped) else ""
        raise InputError(f"none of the {len(source.records)} images in {source.name} could be used{first}")
    write_table(table, out / "ids.parquet")
    store = VectorStore(shards.emb_paths())
    chosen = factory or choose_factory(store.count, store.dim, memory_budget=memory_budget)
    params = default_search_params(chosen)
    log.info("building FAISS index %s over %d x %d (search: %s)", chosen, store.count, store.dim, params or "exact")
    index = build_faiss_index(store, chosen, seed=seed)
    write_index(index, out / "index.faiss")
    meta: dict[str, object] = {"factory": chosen, "search_params": params}
    partial = TrainingIndex(out, meta, table, store, Searcher(index, params, store))
    reference, rows, ref_info = partial.leave_one_out_reference(seed=seed, progress=show_progress)
    _save_npy(out / "reference.npy", reference.astype(np.float32))
    _save_npy(out / "reference_rows.npy", rows.astype(np.int64))
    pose = _fit_boxes(table, out)
    meta.update({
        "format": 1,
        "signature": signature,
        **signature,
        "model_describe": model.describe(),
        "dim": store.dim,
        "count": store.count,
        "distinct_images": partial.unique_count,
        "skipped": len(skipped),
        "shards": [p.name for p in shards.emb_paths()],
        "shard_size": shard_size,
        "batch_size": batch_size,
        "source": source.name,
        "reference": ref_info,
        "k_max": ref_info["k_max"],
        "boxes": pose.to_meta() if pose is not None else None,
        "runtime": runtime.to_dict(),
        "versions": library_versions(),
        "seed": seed,
        "command": command,
    })
    write_json(meta, out / "meta.json")
    log.info("index written to %s: %d images, %s", out, store.count, chosen)
    return TrainingIndex.open(out)
