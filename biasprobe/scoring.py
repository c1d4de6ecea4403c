"""The Python API of the first two jobs: build a training index, score images against it.

    from biasprobe.models import create_model
    from biasprobe.scoring import build_index, score_images
    from biasprobe.sources import open_source

    model = create_model("efficientnet_lite0")
    index = build_index(open_source("train/"), model, "indices/train")
    result = score_images(index, open_source("test/"), model, k=10)
    result.frame            # one row per image (PROTOCOLS.md section 4)
    result.write("scores.parquet")  # + scores.summary.json, scores.skipped.parquet
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .embedding import DEFAULT_SHARD_SIZE, embed_records, embed_to_shards
from .errors import IndexMismatchError, InputError
from .faiss_index import (
    Searcher,
    VectorStore,
    build_faiss_index,
    check_factory,
    choose_factory,
    default_search_params,
    write_index,
)
from .models import ProbeModel
from .pose import FEATURE_COLUMNS, PoseDensity, box_features
from .runtime import Runtime
from .sources import ImageSource, attach_boxes
from .tables import atomic_write_bytes, companion, library_versions, skipped_frame, write_json, write_table
from .typicality import TrainingIndex, model_signature

__all__ = ["ScoreResult", "build_index", "score_images"]

log = logging.getLogger(__name__)

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


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


@dataclass(frozen=True)
class ScoreResult:
    """Scores of one image set: the table, the skipped inputs, the summary."""

    frame: pd.DataFrame
    skipped: pd.DataFrame
    summary: dict[str, object] = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        """Write ``FILE.parquet`` with its companions ``.summary.json`` and ``.skipped.parquet``."""
        path = Path(path)
        write_table(self.skipped, companion(path, "skipped"))
        write_json(self.summary, companion(path, "summary"))
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
    model = runtime.prepare(model)  # type: ignore[assignment]
    batches, emb = embed_records(source.records, model, runtime, batch_size=batch_size, workers=workers, show_progress=show_progress)
    records = [r for b in batches for r in b.records]
    ids = [i for b in batches for i in b.image_ids]
    skipped = skipped_frame([*source.skipped, *(s for b in batches for s in b.skipped)])
    if not records:
        first = f" (e.g. {skipped.path.iloc[0]}: {skipped.reason.iloc[0]})" if len(skipped) else ""
        raise InputError(f"none of the {len(source.records)} images in {source.name} could be used{first}")
    dists, rows = index.knn(emb, k=k, image_ids=ids)
    knn_dist = dists.astype(np.float64).mean(axis=1)
    frame = pd.DataFrame({
        "image_id": pd.Series(ids, dtype=str),
        "path": pd.Series([r.relative for r in records], dtype=str),
        "label": pd.array([r.label for r in records], dtype="Int64"),
        "label_name": pd.Series([r.label_name for r in records], dtype=object),
        "knn_dist": knn_dist,
        "atypicality": index.atypicality(knn_dist, k=k),
        "in_train": index.in_train(ids),
        "neighbor_ids": [list(index.ids[r]) for r in rows],
        "neighbor_paths": [list(index.paths[r]) for r in rows],
        "neighbor_dists": [list(map(float, d)) for d in dists],
    })
    has_boxes = any(r.box is not None for r in records)
    if index.pose is not None and has_boxes:
        feats = box_features([r.box for r in records])
        for i, name in enumerate(FEATURE_COLUMNS):
            frame[name] = feats[:, i]
        frame["pose_atypicality"] = index.pose.pose_atypicality(feats)
    elif has_boxes:
        log.info("boxes given for the images but the index has none: no pose_atypicality")
    summary = {**_summary(index, frame, skipped, k=k, command=command), "images_root": source.images_root}
    return ScoreResult(frame, skipped, summary)


def _summary(index: TrainingIndex, frame: pd.DataFrame, skipped: pd.DataFrame, *, k: int, command: list[str] | None) -> dict[str, object]:
    meta = index.meta
    quantiles = frame["knn_dist"].quantile(list(QUANTILES))
    return {
        "index": {"folder": str(index.folder), **{key: meta.get(key) for key in ("model", "weights_sha256", "layer", "preprocessing",
                  "normalisation", "dim", "count", "distinct_images", "factory", "search_params", "reference", "boxes", "versions")}},
        "k": k,
        "images": len(frame),
        "skipped": len(skipped),
        "in_train": int(frame["in_train"].sum()),
        "knn_dist_quantiles": {f"{q:g}": float(v) for q, v in quantiles.items()},
        "atypicality_mean": float(frame["atypicality"].mean()),
        "pose_atypicality": "pose_atypicality" in frame.columns,
        "versions": library_versions(),
        "command": command,
    }
