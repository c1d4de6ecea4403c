"""The embed stage: images -> L2-normalised embeddings (docs/protocols.md section 4).

Images are decoded and prepared (``transforms.embed_view``) in a background worker while the
model runs on the main threads. ``iter_embedded`` yields batches in memory (for scoring);
``embed_to_shards`` writes row-aligned numbered shards for an index::

    emb_0000.npy        float32 (rows, dim), L2-normalised
    ids_0000.parquet    image_id, path (as given), file (absolute), label, label_name,
                        position, box_cx, box_cy, box_log_size (NaN without a box)
    skipped_0000.parquet path, reason

Shard ``i`` covers source positions ``[i * shard_size, (i + 1) * shard_size)`` and batches
restart at every shard, so a resumed build has the batch and shard boundaries of an
uninterrupted one (docs/protocols.md section 6). ``ids_XXXX.parquet`` is written last: a shard is
finished when it exists. Memory stays flat in the number of images.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from biasprobe.core.errors import InputError
from biasprobe.core.io import atomic_write_bytes, read_table, write_json, write_table
from biasprobe.core.skipped import Skipped, skipped_frame
from biasprobe.data.sources import ImageRecord
from biasprobe.data.transforms import embed_view, normalise
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.models import ProbeModel

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "EmbeddedBatch",
    "ShardSet",
    "embed_records",
    "embed_to_shards",
    "iter_embedded",
    "shard_name",
]

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 4096
ID_COLUMNS = ["image_id", "path", "file", "label", "label_name", "position", "box_cx", "box_cy", "box_log_size"]


def shard_name(kind: str, number: int) -> str:
    """``emb_0003.npy``, ``ids_0003.parquet``, ``skipped_0003.parquet``."""
    return f"{kind}_{number:04d}.npy" if kind == "emb" else f"{kind}_{number:04d}.parquet"


@dataclass(frozen=True)
class EmbeddedBatch:
    """Embeddings of consecutive usable images and the inputs skipped among them."""

    records: list[ImageRecord]
    image_ids: list[str]
    positions: list[int]
    embeddings: np.ndarray  # float32 (n, dim)
    skipped: list[Skipped]


def _prepare_uint8(image: Image.Image, _record: ImageRecord, _image_id: str, *, input_size: int, crop_pct: float) -> torch.Tensor:
    """Embedding view as uint8 (3, S, S): four times less to send from the worker."""
    view = embed_view(image, input_size=input_size, crop_pct=crop_pct)
    return torch.from_numpy(np.rint(view * np.float32(255.0)).astype(np.uint8))


def _forward(model: ProbeModel, runtime: Runtime, views: list[torch.Tensor]) -> np.ndarray:
    prep = model.preprocessing
    x = torch.stack(views).float().div_(255.0)
    x = normalise(x, prep.mean, prep.std)
    with torch.inference_mode(), runtime.autocast():
        _logits, emb = model(runtime.to_input(x))
    return emb.float().cpu().numpy().astype(np.float32, copy=False)


def iter_embedded(
    records: Sequence[ImageRecord],
    model: ProbeModel,
    runtime: Runtime,
    *,
    batch_size: int = 64,
    start: int = 0,
    stop: int | None = None,
    boundaries: int | None = None,
    workers: int | None = None,
    progress: tqdm | None = None,
) -> Iterator[EmbeddedBatch]:
    """Yield embedded batches of ``records[start:stop]`` in order.

    A batch never crosses a multiple of ``boundaries`` (the shard size), so batches are the
    same whether a run starts at 0 or resumes at a shard boundary.
    """
    stop = len(records) if stop is None else min(stop, len(records))
    prep = model.preprocessing
    prepare = functools.partial(_prepare_uint8, input_size=prep.input_size, crop_pct=prep.crop_pct)
    pending: list[Prepared] = []
    skipped: list[Skipped] = []

    def flush() -> EmbeddedBatch:
        emb = _forward(model, runtime, [p.tensor for p in pending]) if pending else np.zeros((0, 0), np.float32)
        batch = EmbeddedBatch([p.record for p in pending], [p.image_id for p in pending], [p.position for p in pending], emb, list(skipped))
        pending.clear()
        skipped.clear()
        return batch

    block = None
    for item in iter_prepared(records[:stop], prepare, start=start, workers=workers):
        position = item.position if isinstance(item, Prepared) else item[0]
        this_block = position // boundaries if boundaries else 0
        if block is not None and this_block != block and (pending or skipped):
            yield flush()
        block = this_block
        if isinstance(item, Prepared):
            pending.append(item)
        else:
            log.warning("skipped %s: %s", item[1].path, item[1].reason)
            skipped.append(item[1])
        if progress is not None:
            progress.update(1)
        if len(pending) >= batch_size:
            yield flush()
    if pending or skipped:
        yield flush()


def embed_records(
    records: Sequence[ImageRecord],
    model: ProbeModel,
    runtime: Runtime,
    *,
    batch_size: int = 64,
    workers: int | None = None,
    show_progress: bool = True,
) -> tuple[list[EmbeddedBatch], np.ndarray]:
    """Embed images in memory (for scoring): the batches and all embeddings stacked (n, dim)."""
    with tqdm(total=len(records), desc="embed", unit="img", disable=not show_progress) as bar:
        batches = list(iter_embedded(records, model, runtime, batch_size=batch_size, workers=workers, progress=bar))
    arrays = [b.embeddings for b in batches if len(b.records)]
    dim = arrays[0].shape[1] if arrays else 0
    return batches, (np.concatenate(arrays) if arrays else np.zeros((0, dim), np.float32))


def _box_columns(records: list[ImageRecord]) -> dict[str, list[float]]:
    feats = [r.box.features() if r.box is not None else (np.nan, np.nan, np.nan) for r in records]
    return {name: [f[i] for f in feats] for i, name in enumerate(("box_cx", "box_cy", "box_log_size"))}


def _ids_frame(records: list[ImageRecord], image_ids: list[str], positions: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "image_id": pd.Series(image_ids, dtype=str),
            "path": pd.Series([r.relative for r in records], dtype=str),
            "file": pd.Series([str(Path(r.path).resolve()) for r in records], dtype=str),
            "label": pd.array([r.label for r in records], dtype="Int64"),
            "label_name": pd.Series([r.label_name for r in records], dtype=object),
            "position": np.asarray(positions, dtype=np.int64),
            **{k: np.asarray(v, dtype=np.float64) for k, v in _box_columns(records).items()},
        }
    )
    return frame[ID_COLUMNS]


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32))
    atomic_write_bytes(path, buffer.getvalue())


@dataclass(frozen=True)
class ShardSet:
    """The finished shards of an embed stage, in order."""

    folder: Path
    numbers: list[int]

    def emb_paths(self) -> list[Path]:
        return [self.folder / shard_name("emb", i) for i in self.numbers]

    def ids(self) -> pd.DataFrame:
        """The id table of every row, row-aligned with the concatenated embeddings."""
        frames = [read_table(self.folder / shard_name("ids", i)) for i in self.numbers]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS)

    def skipped(self) -> pd.DataFrame:
        frames = [read_table(self.folder / shard_name("skipped", i)) for i in self.numbers]
        return pd.concat(frames, ignore_index=True) if frames else skipped_frame([])


def _shard_finished(folder: Path, number: int) -> bool:
    return all((folder / shard_name(kind, number)).is_file() for kind in ("emb", "ids", "skipped"))


def _check_layout(path: Path, layout: dict[str, int]) -> None:
    """A resumed build must keep the shard and batch boundaries of the interrupted one."""
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    diff = [f"{k} {old.get(k)} -> {v}" for k, v in layout.items() if old.get(k) != v]
    if diff:
        raise InputError(
            f"{path.parent} holds shards of another build ({', '.join(diff)}); "
            "use the same images and --batch-size to resume, or a new --out folder"
        )


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
) -> ShardSet:
    """Embed every record into numbered shards in ``folder``, resuming from finished shards."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, -(-len(records) // shard_size))
    layout = {"shard_size": shard_size, "batch_size": batch_size, "records": len(records)}
    _check_layout(folder / "shards.json", layout)
    write_json(layout, folder / "shards.json")
    done = [i for i in range(n_shards) if _shard_finished(folder, i)]
    todo = [i for i in range(n_shards) if i not in done]
    if done:
        log.info("resuming: %d of %d shards already finished", len(done), n_shards)
    with tqdm(total=len(records), desc="embed", unit="img", disable=not show_progress) as bar:
        bar.update(sum(min(shard_size, len(records) - i * shard_size) for i in done))
        for number in todo:
            lo, hi = number * shard_size, min((number + 1) * shard_size, len(records))
            batches = iter_embedded(records, model, runtime, batch_size=batch_size, start=lo, stop=hi,
                                    boundaries=shard_size, workers=workers, progress=bar)
            _write_shard(folder, number, list(batches))
    return ShardSet(folder, list(range(n_shards)))


def _write_shard(folder: Path, number: int, batches: list[EmbeddedBatch]) -> None:
    records = [r for b in batches for r in b.records]
    arrays = [b.embeddings for b in batches if len(b.records)]
    emb = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
    _save_npy(folder / shard_name("emb", number), emb)
    write_table(skipped_frame([s for b in batches for s in b.skipped]), folder / shard_name("skipped", number))
    ids = _ids_frame(records, [i for b in batches for i in b.image_ids], [p for b in batches for p in b.positions])
    write_table(ids, folder / shard_name("ids", number))  # last: marks the shard finished
