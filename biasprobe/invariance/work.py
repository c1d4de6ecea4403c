"""The invariance stage's unit of work: the images of a unit, every protocol, one part.

``InvarianceWork.run(units, finished)`` streams the images of consecutive units once
(decoded and turned into views in background workers, ``engine.stream``), batches their
views through the model (``batching.BatchEngine``), flushes at every unit boundary, turns
each finished image x protocol into its rows (``metrics.image_metrics``) and writes the unit's
part files before calling ``finished(unit, files)``. ``InvarianceRecipe`` is the same work as
picklable values, which a worker elsewhere (``engine.runner``) builds again once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasprobe.core.schemas import INVARIANCE_TABLE, VIEWS_TABLE, conform
from biasprobe.core.skipped import Skipped, skipped_frame
from biasprobe.data.sources import ImageRecord
from biasprobe.engine.runner import WorkerSetup
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.engine.units import Finished, Unit
from biasprobe.invariance.batching import BatchEngine, ViewIndex, ViewTask
from biasprobe.invariance.metrics import image_metrics
from biasprobe.invariance.parts import Part, part_files, write_part
from biasprobe.invariance.protocols import Protocol, ProtocolParams, parse_protocols
from biasprobe.invariance.views import prepare_views
from biasprobe.models.factory import ModelFactory
from biasprobe.models.spec import ProbeModel

__all__ = ["InvarianceRecipe", "InvarianceWork", "task_rows"]


def task_rows(task: ViewTask, model: ProbeModel, params: ProtocolParams) -> tuple[dict[str, Any], pd.DataFrame]:
    """The images-table row and the views rows of one finished image x protocol."""
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


@dataclass
class InvarianceWork:
    """Everything a runner needs to measure any units of one invariance run."""

    model: ProbeModel
    runtime: Runtime
    records: Sequence[ImageRecord]
    protocols: tuple[Protocol, ...]
    params: ProtocolParams
    batch_size: int
    index: ViewIndex | None
    k: int
    parts_dir: Path
    workers: int | None = None
    progress: Callable[[int], object] | None = None

    def run(self, units: Sequence[Unit], finished: Finished) -> None:
        """Measure consecutive ``units`` in one pass, writing each unit's part, then ``finished``."""
        names = tuple(p.name for p in self.protocols)
        prepare = functools.partial(prepare_views, protocols=names, params=self.params)
        stream = iter_prepared(self.records[: units[-1].stop], prepare, start=units[0].start, workers=self.workers, prefetch=4,
                               pin_memory=self.runtime.device.type == "cuda")
        engine = BatchEngine(self.model, self.runtime, self.batch_size, self.index, self.k)
        for unit in units:
            items = [next(stream) for _ in range(unit.size)]
            write_part(self.parts_dir, unit.number, self._measure(engine, items))
            finished(unit, part_files(self.parts_dir, unit.number))

    def recipe(self) -> InvarianceRecipe:
        """This work as picklable values, for a worker elsewhere (an index travels as its folder)."""
        return InvarianceRecipe(ModelFactory.of(self.model), self.records, tuple(p.name for p in self.protocols), self.params,
                                self.batch_size, self.index, self.k, self.parts_dir.resolve(), self.workers)

    def _measure(self, engine: BatchEngine, items: list[Prepared | tuple[int, Skipped]]) -> Part:
        n_views = {p.name: p.n_views(self.params) for p in self.protocols}
        skipped: list[Skipped] = []
        for item in items:
            if isinstance(item, Prepared):
                self._queue(engine, item, n_views)
            else:
                skipped.append(item[1])
            if self.progress is not None:
                self.progress(1)
        rows, views = [], []
        for task in engine.flush():  # batches never cross a unit boundary
            row, view_frame = task_rows(task, self.model, self.params)
            rows.append(row)
            views.append(view_frame)
        images = conform(pd.DataFrame(rows, columns=list(INVARIANCE_TABLE)), INVARIANCE_TABLE)
        view_table = conform(pd.concat(views) if views else pd.DataFrame(), VIEWS_TABLE)
        return Part(images, view_table, skipped_frame(skipped))

    def _queue(self, engine: BatchEngine, item: Prepared, n_views: dict[str, int]) -> None:
        offset = 0
        for protocol in self.protocols:
            v = n_views[protocol.name]
            task = ViewTask(item.position, item.record, item.image_id, protocol,
                            np.zeros((v, self.model.num_classes), dtype=np.float32), np.full(v, np.nan))  # fmt: skip
            engine.add(task, item.tensor[offset : offset + v])
            offset += v




@dataclass(frozen=True)
class InvarianceRecipe:
    """``InvarianceWork`` as picklable values: the model's factory, protocol names, and the index
    (a ``TrainingIndex`` pickles as its folder and is opened again where it is unpickled)."""

    model: ModelFactory
    records: Sequence[ImageRecord]
    protocols: tuple[str, ...]
    params: ProtocolParams
    batch_size: int
    index: ViewIndex | None
    k: int
    parts_dir: Path
    workers: int | None

    def build(self, setup: WorkerSetup) -> InvarianceWork:
        model = setup.runtime.prepare(self.model.build())
        workers = self.workers if self.workers is not None else setup.decode_workers
        return InvarianceWork(model, setup.runtime, self.records, tuple(parse_protocols(self.protocols)), self.params,
                              self.batch_size, self.index, self.k, self.parts_dir, workers=workers)
