"""Decode and prepare images in background workers, in order, one item per image.

Stages that run a model (embedding, invariance) need the next images decoded and turned
into tensors while the current batch runs through the network. ``iter_prepared`` does that
with a torch DataLoader over the records: a worker loads an image (docs/protocols.md section 1),
calls ``prepare(image, record)`` and hands back a tensor; failures come back as ``Skipped``
with the reason, never raised and never dropped. Order is that of the records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from biasprobe.core.errors import BiasprobeError
from biasprobe.core.skipped import Skipped
from biasprobe.data.names import printable
from biasprobe.data.sources import ImageRecord

__all__ = ["Prepared", "default_workers", "iter_prepared"]

PrepareFn = Callable[[Image.Image, ImageRecord, str], torch.Tensor]


@dataclass(frozen=True)
class Prepared:
    """One usable image: its position in the source, record, id and prepared tensor."""

    position: int
    record: ImageRecord
    image_id: str
    tensor: torch.Tensor

    def pin_memory(self) -> Prepared:
        """The same item with its tensor in pinned memory (what DataLoader's ``pin_memory`` calls)."""
        return replace(self, tensor=self.tensor.pin_memory())


_Item = Prepared | tuple[int, Skipped]


class _PreparedDataset(Dataset[_Item]):
    def __init__(self, records: Sequence[ImageRecord], prepare: PrepareFn, start: int) -> None:
        self.records = records
        self.prepare = prepare
        self.start = start

    def __len__(self) -> int:
        return len(self.records) - self.start

    def __getitem__(self, i: int) -> _Item:
        position = self.start + i
        record = self.records[position]
        try:
            image, image_id = record.load()
            tensor = self.prepare(image, record, image_id)
        except BiasprobeError as exc:
            return (position, Skipped(record.relative, printable(str(exc))))
        except Exception as exc:  # a bad file must not stop a long run; its reason is kept
            return (position, Skipped(record.relative, printable(f"{type(exc).__name__}: {exc}")))
        return Prepared(position, record, image_id, torch.as_tensor(tensor))


def _identity(item: object) -> object:
    return item


def default_workers() -> int:
    """Decoding workers that do not compete with the forward pass for cores.

    With the model on a GPU, CPU cores are free for decoding: two fewer than the process may
    use (the main process batches, copies and reads results back), at most 16. Measured on an
    H100 with 16 cores, EfficientNet-Lite0, crop, batch 256: 1,544 views/s with 4 workers,
    2,809 with 8, 3,024 with 14 (docs/scale.md). On the CPU the forward pass takes ``torch.get_num_threads()``
    cores, and a worker only pays off on cores left over: when every core runs the forward
    (the default), images are decoded in the main process between batches. Measured on 2
    cores with EfficientNet-Lite0: views/s 161 in-process vs 135 with one worker (crop),
    155 vs 86 (zhang), 143 vs 118 (scale); decoding and view-making cost 3-15% of the forward,
    less than the two forward threads lose when a worker takes one of their cores.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if torch.cuda.is_available():
        return max(1, min(16, cores - 2))
    return max(0, min(4, cores - torch.get_num_threads()))


def iter_prepared(
    records: Sequence[ImageRecord],
    prepare: PrepareFn,
    *,
    start: int = 0,
    workers: int | None = None,
    prefetch: int = 64,
    pin_memory: bool = False,
) -> Iterator[Prepared | tuple[int, Skipped]]:
    """Yield each record from ``start`` on as ``Prepared`` or ``(position, Skipped)``, in order.

    ``prepare`` must be picklable (a module-level function or a functools.partial) when
    ``workers > 0``. ``pin_memory`` (for a CUDA runtime): each tensor is copied into pinned
    memory by DataLoader's background thread, so the batch goes to the device piece by piece
    without a copy in this thread (``Runtime.to_input``).
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
        pin_memory=pin_memory,
    )
    yield from loader
