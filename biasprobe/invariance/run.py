"""The invariance stage: views of every image under every protocol, through the model in large
batches, per-image metrics (docs/protocols.md sections 2, 3, 6), dataset figures with CIs.

Views are made on the fly in a background worker (``stream.iter_prepared``) as uint8 tensors,
converted, inpainted (``inpaint``) and normalised in the main process, and batched across
images to the batch size. Batch boundaries sit at fixed image positions: images are grouped
in chunks of ``chunk_images``, views of one chunk are cut into batches from the chunk's start
and the last batch of a chunk may be short. A finished chunk is written as part files in
``X.parts/``; a re-run with the same settings skips them, so a resumed run is bit-identical
to an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import numpy as np
import pandas as pd
import torch
from PIL import Image

from biasprobe.analysis.stats import Estimate, mean_estimate, ratio_estimate
from biasprobe.core.errors import InputError
from biasprobe.core.io import companion, read_table, write_json, write_table
from biasprobe.core.skipped import Skipped, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageRecord, ImageSource
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.invariance.inpaint import inpaint_fill, mask_to_rects
from biasprobe.invariance.metrics import image_metrics
from biasprobe.invariance.protocols import MIN_SIDE, Protocol, ProtocolParams, get_protocol, parse_protocols
from biasprobe.models.spec import ProbeModel

__all__ = [
    "DEFAULT_CHUNK_IMAGES",
    "IMAGE_COLUMNS",
    "VIEW_COLUMNS",
    "InvarianceResult",
    "measure_invariance",
    "parts_dir_for",
    "prepare_views",
    "run_invariance",
    "summarise",
    "write_result",
]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_IMAGES = 32

IMAGE_COLUMNS = {
    "image_id": "string", "path": "string", "label": "Int64", "protocol": "string", "model": "string",
    "pairs": "int64", "flips": "int64", "p_change": "float64", "consistency": "float64",
    "mac_top1": "float64", "mac_true": "float64", "prob_range": "float64", "n_labels": "int64",
    "correct0": "boolean", "frac_correct": "float64", "top0": "int64", "p_top0": "float64",
    "label_name": "string", "top0_name": "string",
}  # fmt: skip
VIEW_COLUMNS = {
    "image_id": "string", "protocol": "string", "t": "int64", "top1": "int64", "p_k0": "float64",
    "p_true": "float64", "knn_dist": "float64", "dx": "int64", "dy": "int64",
}  # fmt: skip


class ViewIndex(TypingProtocol):
    """What the stage needs of a training index (biasprobe.typicality.TrainingIndex)."""

    def check_model(self, model: ProbeModel) -> None: ...

    def check_k(self, k: int) -> int: ...

    def knn_dist(self, embeddings: np.ndarray, *, k: int = 10, image_ids: Sequence[str] | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class InvarianceResult:
    """The four outputs of the stage, as DataFrames and the summary dict."""

    images: pd.DataFrame
    views: pd.DataFrame
    skipped: pd.DataFrame
    summary: dict[str, Any]


def _typed(rows: list[dict[str, Any]] | pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(columns))
    return frame[list(columns)].astype(columns).reset_index(drop=True)


def prepare_views(
    image: Image.Image, _record: ImageRecord, image_id: str, *, protocols: tuple[str, ...], params: ProtocolParams
) -> torch.Tensor:
    """Worker side: every protocol's views of one image, concatenated, uint8 (V, C, S, S).

    C is 3, or 4 when a protocol fills its background: channel 3 is then the pasted
    rectangle (255 inside), the inpainting mask.
    """
    if min(image.size) < MIN_SIDE:
        raise InputError(f"image is {image.size[0]}x{image.size[1]} pixels; at least {MIN_SIDE} a side is needed")
    chosen = [get_protocol(name) for name in protocols]
    with_mask = any(p.fill for p in chosen)
    blocks = []
    for protocol in chosen:
        views = protocol.build(image, image_id, params)
        block = views.pixels
        if with_mask:
            if views.mask is None:
                alpha = torch.full((block.shape[0], 1, *block.shape[2:]), 255, dtype=torch.uint8)
            else:
                alpha = views.mask[:, None].to(torch.uint8) * 255
            block = torch.cat([block, alpha], dim=1)
        blocks.append(block)
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


@dataclass(eq=False)
class _Task:
    """One image under one protocol whose views are in flight."""

    position: int
    record: ImageRecord
    image_id: str
    protocol: Protocol
    probs: np.ndarray
    knn: np.ndarray
    done: int = 0


@dataclass(eq=False)
class _Piece:
    task: _Task
    start: int
    pixels: torch.Tensor


@dataclass
class _Engine:
    """Runs queued views through the model in batches and turns finished tasks into rows."""

    model: ProbeModel
    runtime: Runtime
    params: ProtocolParams
    batch_size: int
    index: ViewIndex | None
    k: int
    queue: deque[_Piece] = field(default_factory=deque)
    queued: int = 0
    finished: list[_Task] = field(default_factory=list)

    def add(self, task: _Task, pixels: torch.Tensor) -> None:
        self.queue.append(_Piece(task, 0, pixels))
        self.queued += pixels.shape[0]
        while self.queued >= self.batch_size:
            self._run(self.batch_size)

    def flush(self) -> None:
        while self.queued:
            self._run(min(self.queued, self.batch_size))

    def _take(self, n: int) -> list[_Piece]:
        pieces = []
        while n:
            head = self.queue[0]
            size = head.pixels.shape[0]
            if size <= n:
                pieces.append(self.queue.popleft())
                n -= size
            else:
                pieces.append(_Piece(head.task, head.start, head.pixels[:n]))
                self.queue[0] = _Piece(head.task, head.start + n, head.pixels[n:])
                n = 0
        return pieces

    def _run(self, n: int) -> None:
        pieces = self._take(n)
        self.queued -= n
        probs, knn = self.forward(torch.cat([p.pixels for p in pieces]), pieces)
        row = 0
        for piece in pieces:
            size = piece.pixels.shape[0]
            task = piece.task
            task.probs[piece.start : piece.start + size] = probs[row : row + size]
            task.knn[piece.start : piece.start + size] = knn[row : row + size]
            task.done += size
            row += size
            if task.done == task.probs.shape[0]:
                self.finished.append(task)

    def forward(self, pixels: torch.Tensor, pieces: list[_Piece]) -> tuple[np.ndarray, np.ndarray]:
        """uint8 views (n, C, S, S) -> softmax probabilities (n, classes) and knn_dist (n,)."""
        prep = self.model.preprocessing
        with torch.inference_mode():
            # channels_last from the start (cheap on uint8); later in-place steps keep the layout.
            x = pixels[:, :3].contiguous(memory_format=torch.channels_last).float().div_(255.0)
            if any(p.task.protocol.fill for p in pieces):
                rows = torch.cat([torch.full((p.pixels.shape[0],), p.task.protocol.fill, dtype=torch.bool) for p in pieces])
                x[rows] = inpaint_fill(x[rows], mask_to_rects(pixels[rows, 3] > 0))
            mean = torch.tensor(prep.mean, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor(prep.std, dtype=x.dtype).view(1, 3, 1, 1)
            x = x.sub_(mean).div_(std)
            with self.runtime.autocast():
                logits, embedding = self.model(self.runtime.to_input(x))
            probs = logits.float().softmax(dim=1).cpu().numpy()
        knn = np.full(len(probs), np.nan)
        if self.index is not None:
            ids = [p.task.image_id for p in pieces for _ in range(p.pixels.shape[0])]
            emb = np.ascontiguousarray(embedding.float().cpu().numpy(), dtype=np.float32)
            knn = np.asarray(self.index.knn_dist(emb, k=self.k, image_ids=ids), dtype=np.float64)
        return probs, knn


def _task_rows(task: _Task, model: ProbeModel, params: ProtocolParams) -> tuple[dict[str, Any], pd.DataFrame]:
    record, protocol = task.record, task.protocol
    metrics, cols = image_metrics(task.probs, paired=protocol.paired, label=record.label)
    names = model.class_names
    label_name = record.label_name
    if label_name is None and record.label is not None and 0 <= record.label < len(names):
        label_name = names[record.label]
    row = {
        "image_id": task.image_id, "path": record.relative, "label": record.label,
        "protocol": protocol.name, "model": model.name, **metrics.to_dict(),
        "label_name": label_name, "top0_name": names[metrics.top0] if metrics.top0 < len(names) else None,
    }  # fmt: skip
    dx, dy = protocol.offsets(task.image_id, params)
    views = pd.DataFrame({
        "image_id": task.image_id, "protocol": protocol.name, "t": np.arange(len(cols.top1)),
        "top1": cols.top1, "p_k0": cols.p_k0, "p_true": cols.p_true, "knn_dist": task.knn, "dx": dx, "dy": dy,
    })  # fmt: skip
    return row, views


def parts_dir_for(out: str | Path) -> Path:
    """``X.parquet`` -> ``X.parts/``, where finished chunks wait until the run completes."""
    out = Path(out)
    return out.with_name(f"{out.name.removesuffix('.parquet')}.parts")


def _part_paths(parts_dir: Path, chunk: int) -> tuple[Path, Path, Path]:
    images = parts_dir / f"part_{chunk:06d}.parquet"
    return images, companion(images, "views"), companion(images, "skipped")


def _write_part(parts_dir: Path, chunk: int, images: pd.DataFrame, views: pd.DataFrame, skipped: pd.DataFrame) -> None:
    """Write one finished chunk; the images file goes last and marks the chunk done."""
    images_path, views_path, skipped_path = _part_paths(parts_dir, chunk)
    write_table(views, views_path)
    write_table(skipped, skipped_path)
    write_table(images, images_path)


def _read_part(parts_dir: Path, chunk: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    paths = _part_paths(parts_dir, chunk)
    if not all(p.is_file() for p in paths):
        return None
    return _typed(read_table(paths[0]), IMAGE_COLUMNS), _typed(read_table(paths[1]), VIEW_COLUMNS), read_table(paths[2])


def _check_parts(parts_dir: Path, settings: dict[str, Any]) -> None:
    """Create the parts folder, or make sure its parts come from a run with the same settings."""
    manifest = parts_dir / "run.json"
    wanted = json.loads(json.dumps(settings))
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        if found != wanted:
            differs = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise InputError(
                f"{parts_dir} holds a partial run with different settings ({', '.join(differs)}); "
                "delete that folder to start again, or re-run with the same settings to resume"
            )
        return
    parts_dir.mkdir(parents=True, exist_ok=True)
    write_json(wanted, manifest)


def _chunks(items: Iterator[Prepared | tuple[int, Skipped]], chunk_images: int) -> Iterator[tuple[int, list[Prepared | tuple[int, Skipped]]]]:
    """Group streamed items by chunk number (position // chunk_images), in order."""
    current, group = None, []
    for item in items:
        position = item.position if isinstance(item, Prepared) else item[0]
        chunk = position // chunk_images
        if current is not None and chunk != current:
            yield current, group
            group = []
        current = chunk
        group.append(item)
    if current is not None:
        yield current, group


def measure_invariance(
    model: ProbeModel,
    source: ImageSource,
    *,
    protocols: str | Sequence[str] = ("crop",),
    params: ProtocolParams | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    index: ViewIndex | None = None,
    k: int = 10,
    seed: int = 0,
    parts_dir: str | Path | None = None,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> InvarianceResult:
    """Measure every image of ``source`` under every protocol (docs/protocols.md sections 2-3).

    ``parts_dir`` makes the run resumable: finished chunks of ``chunk_images`` images are
    kept there and skipped by a re-run with the same settings. ``index`` (a TrainingIndex
    built by the same model) adds each view's ``knn_dist``.
    """
    chosen = parse_protocols(protocols)
    params = params or ProtocolParams.for_model(model.preprocessing, run_seed=seed)
    if params.input_size != model.preprocessing.input_size:
        raise InputError(f"protocol input size {params.input_size} differs from the model's {model.preprocessing.input_size}")
    for protocol in chosen:
        protocol.check(params)
    if batch_size < 1 or chunk_images < 1:
        raise InputError(f"batch size and chunk size must be at least 1, got {batch_size} and {chunk_images}")
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    if index is not None:
        index.check_model(model)
        index.check_k(k)  # a k the index cannot serve is refused before any work
    records = source.records
    names = tuple(p.name for p in chosen)
    settings = {
        "model": model.describe(), "protocols": list(names), "params": params.to_dict(),
        "batch_size": batch_size, "chunk_images": chunk_images, "precision": runtime.precision,
        "index": index is not None, "k": k, "images": [r.relative for r in records],
    }  # fmt: skip
    images_parts: list[pd.DataFrame] = []
    views_parts: list[pd.DataFrame] = []
    skipped_parts: list[pd.DataFrame] = [skipped_frame(source.skipped)]
    n_chunks = (len(records) + chunk_images - 1) // chunk_images
    done_chunks = 0
    parts = Path(parts_dir) if parts_dir is not None else None
    if parts is not None:
        _check_parts(parts, settings)
        while done_chunks < n_chunks and (part := _read_part(parts, done_chunks)) is not None:
            images_parts.append(part[0])
            views_parts.append(part[1])
            skipped_parts.append(part[2])
            done_chunks += 1
        if done_chunks:
            log.info("resuming: %d of %d chunks already done in %s", done_chunks, n_chunks, parts)
    start = done_chunks * chunk_images
    engine = _Engine(model, runtime, params, batch_size, index, k)
    n_views = {p.name: p.n_views(params) for p in chosen}
    prepare = functools.partial(prepare_views, protocols=names, params=params)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(records), initial=start, unit="img", desc="invariance", file=sys.stderr, disable=not progress)
    try:
        stream = iter_prepared(records, prepare, start=start, workers=workers, prefetch=4)
        for chunk, items in _chunks(stream, chunk_images):
            rows, views, skipped = [], [], []
            for item in items:
                if not isinstance(item, Prepared):
                    skipped.append(item[1])
                    bar.update(1)
                    continue
                offset = 0
                for protocol in chosen:
                    v = n_views[protocol.name]
                    task = _Task(item.position, item.record, item.image_id, protocol,
                                 np.zeros((v, model.num_classes), dtype=np.float32), np.full(v, np.nan))
                    engine.add(task, item.tensor[offset : offset + v])
                    offset += v
                bar.update(1)
            engine.flush()
            for task in engine.finished:
                row, view_frame = _task_rows(task, model, params)
                rows.append(row)
                views.append(view_frame)
            engine.finished.clear()
            part = (_typed(rows, IMAGE_COLUMNS), _typed(pd.concat(views) if views else [], VIEW_COLUMNS), skipped_frame(skipped))
            if parts is not None:
                _write_part(parts, chunk, *part)
            images_parts.append(part[0])
            views_parts.append(part[1])
            skipped_parts.append(part[2])
    finally:
        bar.close()
    images = _typed(pd.concat(images_parts) if images_parts else [], IMAGE_COLUMNS)
    views = _typed(pd.concat(views_parts) if views_parts else [], VIEW_COLUMNS)
    skipped = skipped_frame(Skipped(p, r) for p, r in pd.concat(skipped_parts).itertuples(index=False))
    summary = {
        "model": model.describe(),
        "parameters": {**params.to_dict(), "protocols": list(names), "batch_size": batch_size,
                       "chunk_images": chunk_images, "bootstrap_seed": seed, "k": k if index is not None else None,
                       "images": len(records), "images_root": source.images_root, "runtime": runtime.to_dict()},
        "protocols": summarise(images, protocols=names, seed=seed),
        "skipped": len(skipped),
        "versions": library_versions(),
        "command": list(command) if command is not None else None,
    }  # fmt: skip
    return InvarianceResult(images, views, skipped, summary)


def _ci(estimate: Estimate) -> list[float]:
    return [estimate.ci_low, estimate.ci_high]


def summarise(images: pd.DataFrame, *, protocols: Sequence[str], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Dataset figures per protocol: P(top-1 change), MAC, consistency, accuracy, 95% CIs.

    P(change) = sum(flips) / sum(pairs); MAC = mean of all per-pair absolute changes
    (sum(mac_top1 * pairs) / sum(pairs)); CIs by bootstrap over images (stats.py).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in protocols:
        rows = images[images["protocol"] == name]
        pairs = rows["pairs"].to_numpy(float)
        change = ratio_estimate(rows["flips"].to_numpy(float), pairs, seed=seed)
        mac = ratio_estimate(rows["mac_top1"].to_numpy(float) * pairs, pairs, seed=seed)
        correct = rows["correct0"].dropna().to_numpy(float)
        accuracy = mean_estimate(correct, seed=seed) if correct.size else None
        out[name] = {
            "n": len(rows), "pairs": int(pairs.sum()), "flips": int(rows["flips"].sum()),
            "p_change": change.value, "p_change_ci": _ci(change),
            "mac": mac.value, "mac_ci": _ci(mac),
            "consistency": 1.0 - change.value, "consistency_ci": [1.0 - change.ci_high, 1.0 - change.ci_low],
            "accuracy": accuracy.value if accuracy else None, "accuracy_ci": _ci(accuracy) if accuracy else None,
        }  # fmt: skip
    return out


def write_result(result: InvarianceResult, out: str | Path) -> Path:
    """Write ``X.parquet`` and its companions ``X.views.parquet``, ``X.summary.json``, ``X.skipped.parquet``."""
    out = Path(out)
    if out.suffix != ".parquet":
        raise InputError(f"--out must end in .parquet, got {out}")
    write_table(result.views, companion(out, "views"))
    write_table(result.skipped, companion(out, "skipped"))
    write_json(result.summary, companion(out, "summary"))
    write_table(result.images, out)
    return out


def run_invariance(model: ProbeModel, source: ImageSource, out: str | Path, **kwargs: Any) -> InvarianceResult:
    """``measure_invariance`` resumable through ``X.parts/``, then the four files written."""
    out = Path(out)
    if out.suffix != ".parquet":
        raise InputError(f"--out must end in .parquet, got {out}")
    parts = parts_dir_for(out)
    result = measure_invariance(model, source, parts_dir=parts, **kwargs)
    write_result(result, out)
    shutil.rmtree(parts, ignore_errors=True)
    return result
