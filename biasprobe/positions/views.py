"""Position views from a decoding worker to the model, and per-image rows back.

``prepare_object`` runs in the worker: it decodes nothing itself (``engine.stream`` does) and
hands back only the object (uint8 (3, h, w)), so a grid of hundreds of views never crosses
processes. ``PositionEngine`` pastes the object at each grid position while it fills batches
of ``batch_size`` views, cut across images and flushed at unit boundaries (docs/protocols.md
section 6), and gives back each image whose every position has been through the model.
``image_rows`` turns one finished image into its table rows (section 8.3).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.data.sources import ImageRecord
from biasprobe.data.transforms import normalise
from biasprobe.engine.runtime import Runtime
from biasprobe.models.spec import ProbeModel
from biasprobe.positions.grid import PositionGrid, object_patch, paste

__all__ = ["MIN_SIDE", "ObjectSettings", "PositionEngine", "PositionTask", "image_rows", "prepare_object"]

MIN_SIDE = 8
"""Images with a side below this many pixels are skipped, as in the invariance stage."""


@dataclass(frozen=True)
class ObjectSettings:
    """What cutting the object and laying its grid need (picklable, for decoding workers)."""

    canvas: int
    embed_size: int
    resize_size: int
    step: int | None = None

    def grid(self, patch: torch.Tensor) -> PositionGrid:
        return PositionGrid.for_object(self.canvas, int(patch.shape[2]), int(patch.shape[1]), self.step)


def prepare_object(image: Image.Image, record: ImageRecord, _image_id: str, *, settings: ObjectSettings) -> torch.Tensor:
    """Worker side: the object of one image, uint8 (3, h, w) (its grid is checked here)."""
    if min(image.size) < MIN_SIDE:
        raise InputError(f"image is {image.size[0]}x{image.size[1]} pixels; at least {MIN_SIDE} a side is needed")
    patch = object_patch(image, record.box, resize_size=settings.resize_size, embed_size=settings.embed_size)
    settings.grid(patch)
    return patch


@dataclass(eq=False)
class PositionTask:
    """One image whose positions are in flight."""

    position: int
    record: ImageRecord
    image_id: str
    patch: torch.Tensor
    grid: PositionGrid
    probs: np.ndarray
    done: int = 0


@dataclass
class PositionEngine:
    """Pastes queued images' objects at their positions and runs them through the model in batches."""

    model: ProbeModel
    runtime: Runtime
    batch_size: int
    queue: deque[tuple[PositionTask, int]] = field(default_factory=deque)
    queued: int = 0
    finished: list[PositionTask] = field(default_factory=list)

    def add(self, task: PositionTask) -> None:
        """Queue every position of a task; full batches run at once."""
        self.queue.append((task, 0))
        self.queued += len(task.grid)
        while self.queued >= self.batch_size:
            self._run(self.batch_size)

    def flush(self) -> list[PositionTask]:
        """Run every queued position and return (and forget) the finished tasks, in order."""
        while self.queued:
            self._run(min(self.queued, self.batch_size))
        done, self.finished = self.finished, []
        return done

    def _run(self, n: int) -> None:
        pieces: list[tuple[PositionTask, int, int]] = []
        left = n
        while left:
            task, start = self.queue[0]
            take = min(left, len(task.grid) - start)
            pieces.append((task, start, take))
            left -= take
            if start + take == len(task.grid):
                self.queue.popleft()
            else:
                self.queue[0] = (task, start + take)
        self.queued -= n
        blocks = []
        for task, start, take in pieces:
            _, _, lefts, tops = task.grid.corners()
            blocks.append(paste(task.patch, lefts[start : start + take], tops[start : start + take], task.grid.canvas))
        probs = self.forward(torch.cat(blocks))
        row = 0
        for task, start, take in pieces:
            task.probs[start : start + take] = probs[row : row + take]
            task.done += take
            row += take
            if task.done == len(task.grid):
                self.finished.append(task)

    def forward(self, pixels: torch.Tensor) -> np.ndarray:
        """uint8 views (n, 3, S, S) -> float32 softmax probabilities (n, classes)."""
        prep = self.model.preprocessing
        with torch.inference_mode():
            x = pixels.contiguous(memory_format=torch.channels_last).float().div_(255.0)
            x = normalise(x, prep.mean, prep.std)
            with self.runtime.autocast():
                logits, _ = self.model(self.runtime.to_input(x))
            return logits.float().softmax(dim=1).cpu().numpy()


def image_rows(task: PositionTask, model: ProbeModel) -> pd.DataFrame:
    """The rows of one finished image, one per position (docs/protocols.md section 8.3)."""
    grid, probs, label = task.grid, task.probs.astype(np.float64), task.record.label
    gx, gy, _, _ = grid.corners()
    x, y = grid.centres()
    top1 = probs.argmax(axis=1)  # the first of tied maxima: the lower class index
    k0 = int(top1[grid.reference])
    usable = label is not None and 0 <= label < probs.shape[1]
    nx, ny = grid.shape
    plane = top1.reshape(ny, nx)
    flips = np.zeros((ny, nx), dtype=np.int64)
    pairs = np.zeros((ny, nx), dtype=np.int64)
    flips[:, :-1] += plane[:, :-1] != plane[:, 1:]
    pairs[:, :-1] += 1
    flips[:-1, :] += plane[:-1, :] != plane[1:, :]
    pairs[:-1, :] += 1
    n = len(grid)
    return pd.DataFrame({
        "image_id": task.image_id, "path": task.record.relative, "label": pd.array([label] * n, dtype="Int64"),
        "model": model.name, "step": grid.step, "gx": gx, "gy": gy, "x": x, "y": y, "top1": top1,
        "p_true": probs[:, label] if usable and label is not None else np.full(n, np.nan),
        "correct": pd.array([None] * n if label is None else list(top1 == label), dtype="boolean"),
        "p_top0": probs[:, k0], "pairs": pairs.reshape(-1), "flips": flips.reshape(-1),
    })  # fmt: skip
