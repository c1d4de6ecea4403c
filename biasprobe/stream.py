"""Decode and prepare images in background workers, in order, one item per image.

Stages that run a model (embedding, invariance) need the next images decoded and turned
into tensors while the current batch runs through the network. ``iter_prepared`` does that
with a torch DataLoader over the records: a worker loads an image (PROTOCOLS.md section 1),
calls ``prepare(image, record)`` and hands back a tensor; failures come back as ``Skipped``
with the reason, never raised and never dropped. Order is that of the records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .errors import BiasprobeError
from .sources import ImageRecord, Skipped

__all__ = ["Prepared", "default_workers", "iter_prepared"]

PrepareFn = Callable[[Image.Image, ImageRecord, str], torch.Tensor]


@dataclass(frozen=True)
class Prepared:
    """One usable image: its position in the source, record, id and prepared tensor."""

    position: int
    record: ImageRecord
    image_id: str
    tensor: torch.Tensor


class _PreparedDataset(Dataset):
    def __init__(self, records: Sequence[ImageRecord], prepare: PrepareFn, start: int) -> None:
        self.records = records
        self.prepare = prepare
        self.start = start

    def __len__(self) -> int:
        return len(self.records) - self.start

    def __getitem__(self, i: int) -> Prepared | tuple[int, Skipped]:
        position = self.start + i
        record = self.records[position]
        try:
            image, image_id = record.load()
            tensor = self.prepare(image, record, image_id)
        except BiasprobeError as exc:
            return (position, Skipped(record.relative, str(exc)))
        except Exception as exc:  # a bad file must not stop a long run; its reason is kept
            return (position, Skipped(record.relative, f"{type(exc).__name__}: {exc}"))
        return Prepared(position, record, image_id, torch.as_tensor(tensor))


def _identity(item: object) -> object:
    return item


def default_workers() -> int:
    """One decoding worker: on few cores the rest belong to the forward pass."""
    return 1


def iter_prepared(
    records: Sequence[ImageRecord],
    prepare: PrepareFn,
    *,
    start: int = 0,
    workers: int | None = None,
    prefetch: int = 64,
) -> Iterator[Prepared | tuple[int, Skipped]]:
    """Yield each record from ``start`` on as ``Prepared`` or ``(position, Skipped)``, in order.

    ``prepare`` must be picklable (a module-level function or a functools.partial) when
    ``workers > 0``.
    """
    workers = default_workers() if workers is None else workers
    dataset = _PreparedDataset(records, prepare, start)
    if len(dataset) <= 0:
        return
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        collate_fn=_identity,
        prefetch_factor=max(2, prefetch // max(workers, 1)) if workers > 0 else None,
        persistent_workers=False,
    )
    yield from loader
