"""The layers stage's unit of work: the images of a unit, every protocol, one part.

``LayersWork.run(units, finished)`` streams the images of consecutive units once (their views
built as the invariance stage builds them, ``invariance.views``), sends the views through the
model in batches of ``batch_size`` with hooks at the probe points (``probes.ProbeCapture``),
flushes at every unit boundary (docs/protocols.md section 6), turns each image x protocol into
one row per probe (``profile.layer_changes``) and writes the unit's files before calling
``finished(unit, files)``: the rows, the skipped inputs, and every image's first-view features
(the ``spread`` of section 7.3 needs pairs of images across units).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biasprobe.core.io import companion, read_table, save_npy, write_table
from biasprobe.core.schemas import FIRST_VIEWS_TABLE, LAYERS_TABLE, SKIPPED_TABLE, conform
from biasprobe.core.skipped import Skipped, skipped_frame
from biasprobe.data.sources import ImageRecord
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.engine.units import Finished, Unit
from biasprobe.invariance.protocols import Protocol, ProtocolParams
from biasprobe.invariance.views import prepare_views, views_to_input
from biasprobe.layers.probes import ProbeCapture
from biasprobe.layers.profile import ProbeLayout, layer_changes
from biasprobe.models.spec import ProbeModel

__all__ = ["LayerPart", "LayersWork", "part_files", "read_part", "write_part"]


@dataclass(frozen=True)
class LayerPart:
    """One unit's outputs: rows, skipped inputs, and first-view features with their keys."""

    rows: pd.DataFrame
    skipped: pd.DataFrame
    first_keys: pd.DataFrame
    first: np.ndarray


def part_files(parts_dir: Path, unit: int) -> tuple[Path, Path, Path, Path]:
    """Unit ``unit``'s rows, skipped inputs, first-view keys and first-view features."""
    rows = parts_dir / f"part_{unit:06d}.parquet"
    return rows, companion(rows, "skipped"), companion(rows, "first"), parts_dir / f"part_{unit:06d}.first.npy"


def write_part(parts_dir: Path, unit: int, part: LayerPart) -> tuple[Path, Path, Path, Path]:
    rows, skipped, keys, first = files = part_files(parts_dir, unit)
    save_npy(part.first.astype(np.float32), first)
    write_table(part.first_keys, keys)
    write_table(part.skipped, skipped)
    write_table(part.rows, rows)
    return files


def read_part(parts_dir: Path, unit: int, width: int) -> LayerPart:
    rows, skipped, keys, first = part_files(parts_dir, unit)
    vectors = np.load(first, allow_pickle=False)
    key_table = conform(read_table(keys), FIRST_VIEWS_TABLE, what=str(keys))
    return LayerPart(
        conform(read_table(rows), LAYERS_TABLE, what=str(rows)),
        conform(read_table(skipped), SKIPPED_TABLE, what=str(skipped)),
        key_table,
        vectors.reshape(len(key_table), width),
    )


@dataclass(eq=False)
class _Task:
    record: ImageRecord
    image_id: str
    protocol: Protocol
    features: np.ndarray
    done: int = 0


@dataclass
class _Engine:
    """Queued views through the model in batches of ``batch_size``; features per task."""

    model: ProbeModel
    runtime: Runtime
    batch_size: int
    capture: ProbeCapture
    queue: deque[tuple[_Task, int, torch.Tensor]] = field(default_factory=deque)
    queued: int = 0
    finished: list[_Task] = field(default_factory=list)

    def add(self, task: _Task, pixels: torch.Tensor) -> None:
        self.queue.append((task, 0, pixels))
        self.queued += pixels.shape[0]
        while self.queued >= self.batch_size:
            self._run(self.batch_size)

    def flush(self) -> list[_Task]:
        while self.queued:
            self._run(min(self.queued, self.batch_size))
        done, self.finished = self.finished, []
        return done

    def _run(self, n: int) -> None:
        pieces: list[tuple[_Task, int, torch.Tensor]] = []
        left = n
        while left:
            task, start, pixels = self.queue[0]
            if pixels.shape[0] <= left:
                pieces.append(self.queue.popleft())
                left -= pixels.shape[0]
            else:
                pieces.append((task, start, pixels[:left]))
                self.queue[0] = (task, start + left, pixels[left:])
                left = 0
        self.queued -= n
        fill = [task.protocol.fill for task, _, pixels in pieces for _ in range(pixels.shape[0])]
        features = self._forward([pixels for _, _, pixels in pieces], fill)
        row = 0
        for task, start, pixels in pieces:
            size = pixels.shape[0]
            task.features[start : start + size] = features[row : row + size]
            task.done += size
            row += size
            if task.done == task.features.shape[0]:
                self.finished.append(task)

    def _forward(self, pixels: list[torch.Tensor], fill: list[str]) -> np.ndarray:
        """uint8 views (pieces of (n, C, S, S)) -> every probe's vector, concatenated, float32
        (n, width); the views travel to the device as uint8 and are converted there."""
        with torch.inference_mode():
            x = views_to_input(self.runtime.to_input(pixels), fill, self.model.preprocessing)
            with self.runtime.autocast():
                _logits, embedding = self.model(x)
            means = self.capture.take()
            return torch.cat([*means, embedding.float()], dim=1).cpu().numpy()


@dataclass
class LayersWork:
    """Everything a runner needs to measure any units of one layers run."""

    model: ProbeModel
    runtime: Runtime
    records: Sequence[ImageRecord]
    protocols: tuple[Protocol, ...]
    params: ProtocolParams
    layout: ProbeLayout
    batch_size: int
    parts_dir: Path
    workers: int | None = None
    progress: Callable[[int], object] | None = None

    def run(self, units: Sequence[Unit], finished: Finished) -> None:
        """Measure consecutive ``units`` in one pass, writing each unit's files, then ``finished``."""
        names = tuple(p.name for p in self.protocols)
        prepare = functools.partial(prepare_views, protocols=names, params=self.params)
        stream = iter_prepared(self.records[: units[-1].stop], prepare, start=units[0].start, workers=self.workers, prefetch=4)
        capture = ProbeCapture(self.model, self.layout.probes)
        engine = _Engine(self.model, self.runtime, self.batch_size, capture)
        with capture.attached():
            for unit in units:
                items = [next(stream) for _ in range(unit.size)]
                files = write_part(self.parts_dir, unit.number, self._measure(engine, items))
                finished(unit, files)

    def _measure(self, engine: _Engine, items: list[Prepared | tuple[int, Skipped]]) -> LayerPart:
        skipped: list[Skipped] = []
        for item in items:
            if isinstance(item, Prepared):
                offset = 0
                for protocol in self.protocols:
                    v = protocol.n_views(self.params)
                    task = _Task(item.record, item.image_id, protocol, np.zeros((v, self.layout.width), dtype=np.float32))
                    engine.add(task, item.tensor[offset : offset + v])
                    offset += v
            else:
                skipped.append(item[1])
            if self.progress is not None:
                self.progress(1)
        rows: list[dict[str, object]] = []
        keys: list[tuple[str, str]] = []
        first: list[np.ndarray] = []
        for task in engine.flush():  # batches never cross a unit boundary
            for probe, (change_1, aligned) in zip(self.layout.probes, layer_changes(task.features, self.layout), strict=True):
                rows.append({"image_id": task.image_id, "path": task.record.relative, "protocol": task.protocol.name,
                             "model": self.model.name, "probe": probe.name, "depth": probe.depth, "stride": probe.stride,
                             "channels": probe.channels, "change_1": change_1, "change_aligned": aligned})  # fmt: skip
            keys.append((task.image_id, task.protocol.name))
            first.append(task.features[0])
        table = conform(pd.DataFrame(rows, columns=list(LAYERS_TABLE)), LAYERS_TABLE)
        key_table = conform(pd.DataFrame(keys, columns=list(FIRST_VIEWS_TABLE)), FIRST_VIEWS_TABLE)
        vectors = np.stack(first) if first else np.zeros((0, self.layout.width), dtype=np.float32)
        return LayerPart(table, skipped_frame(skipped), key_table, vectors)
