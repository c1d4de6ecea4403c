"""The embed stage: images -> L2-normalised embeddings (docs/protocols.md section 4).

Images are decoded and prepared (``transforms.embed_view``) in a background worker while the
model runs on the main threads. ``iter_embedded`` yields batches in order; ``embed_records``
keeps them in memory (for scoring); ``shards.embed_to_shards`` writes them as the numbered
shards of an index. With ``boundaries`` (the shard size) a batch never crosses a multiple of
it, so batches are the same whether a run starts at 0 or at a shard boundary
(docs/protocols.md section 6).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from biasprobe.core.skipped import Skipped
from biasprobe.data.sources import ImageRecord
from biasprobe.data.transforms import embed_view, normalise
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.models import ProbeModel

__all__ = ["EmbeddedBatch", "embed_records", "iter_embedded"]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class EmbeddedBatch:
    """Embeddings of consecutive usable images and the inputs skipped among them."""

    records: list[ImageRecord]
    image_ids: list[str]
    positions: list[int]
    embeddings: np.ndarray  # float32 (n, dim)
    skipped: list[Skipped]
    block: int = 0  # the shard its positions fall in (position // boundaries), 0 without boundaries


def _prepare_uint8(image: Image.Image, _record: ImageRecord, _image_id: str, *, input_size: int, crop_pct: float) -> torch.Tensor:
    """Embedding view as uint8 (3, S, S): four times less to send from the worker."""
    view = embed_view(image, input_size=input_size, crop_pct=crop_pct)
    return torch.from_numpy(np.rint(view * np.float32(255.0)).astype(np.uint8))


def _forward(model: ProbeModel, runtime: Runtime, views: list[torch.Tensor]) -> np.ndarray:
    """uint8 views to the device, converted and normalised there, through the model: embeddings (n, dim)."""
    prep = model.preprocessing
    with torch.inference_mode():
        x = normalise(runtime.to_input([v[None] for v in views]).float().div_(255.0), prep.mean, prep.std)
        with runtime.autocast():
            _logits, emb = model(x)
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
    same whether a run starts at 0 or resumes at a shard boundary. ``progress`` counts the
    images of each batch once the batch is embedded (not when decoded), so a full bar means
    the embedding is done.
    """
    stop = len(records) if stop is None else min(stop, len(records))
    prep = model.preprocessing
    prepare = functools.partial(_prepare_uint8, input_size=prep.input_size, crop_pct=prep.crop_pct)
    pending: list[Prepared] = []
    skipped: list[Skipped] = []
    block: int | None = None  # the shard of the items in pending and skipped

    def flush() -> EmbeddedBatch:
        emb = _forward(model, runtime, [p.tensor for p in pending]) if pending else np.zeros((0, 0), np.float32)
        if progress is not None:
            progress.update(len(pending) + len(skipped))
        batch = EmbeddedBatch([p.record for p in pending], [p.image_id for p in pending], [p.position for p in pending], emb,
                              list(skipped), block or 0)
        pending.clear()
        skipped.clear()
        return batch

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
