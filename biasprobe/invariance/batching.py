"""The batching engine: views of many images through the model in batches of a fixed size.

Each image under each protocol is a ``ViewTask`` whose views are queued; the engine cuts the
queue into batches of ``batch_size`` views regardless of image boundaries, runs the model
(and, with a training index, each view's kNN lookup), and hands back tasks whose every view
is done. ``flush`` runs what is left as a last, shorter batch: the caller flushes at unit
boundaries, so batches never cross a unit (docs/protocols.md section 6). One batch is in
flight at a time: a batch is launched on the device before the previous one is read back, so
a GPU computes while this process prepares the next batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol as TypingProtocol

import numpy as np
import torch

from biasprobe.data.sources import ImageRecord
from biasprobe.engine.runtime import Runtime
from biasprobe.invariance.protocols import Protocol
from biasprobe.invariance.views import views_to_input
from biasprobe.models.spec import ProbeModel

__all__ = ["BatchEngine", "ViewIndex", "ViewTask"]


class ViewIndex(TypingProtocol):
    """What the stage needs of a training index (biasprobe.index.TrainingIndex)."""

    def check_model(self, model: ProbeModel) -> None: ...

    def check_k(self, k: int) -> int: ...

    def knn_dist(self, embeddings: np.ndarray, *, k: int = 10, image_ids: Sequence[str] | None = None) -> np.ndarray: ...


@dataclass(eq=False)
class ViewTask:
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
    task: ViewTask
    start: int
    pixels: torch.Tensor


@dataclass(eq=False)
class _Launched:
    """A batch whose forward pass is queued on the device: its pieces and output tensors."""

    pieces: list[_Piece]
    probs: torch.Tensor
    embedding: torch.Tensor


@dataclass
class BatchEngine:
    """Runs queued views through the model in batches; collects finished tasks in order."""

    model: ProbeModel
    runtime: Runtime
    batch_size: int
    index: ViewIndex | None
    k: int
    queue: deque[_Piece] = field(default_factory=deque)
    queued: int = 0
    finished: list[ViewTask] = field(default_factory=list)
    in_flight: _Launched | None = None

    def add(self, task: ViewTask, pixels: torch.Tensor) -> None:
        """Queue a task's views (uint8 (V, C, S, S)); full batches run at once."""
        self.queue.append(_Piece(task, 0, pixels))
        self.queued += pixels.shape[0]
        while self.queued >= self.batch_size:
            self._run(self.batch_size)

    def flush(self) -> list[ViewTask]:
        """Run every queued view and return (and forget) the finished tasks."""
        while self.queued:
            self._run(min(self.queued, self.batch_size))
        self._collect()
        done, self.finished = self.finished, []
        return done

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
        """Launch a batch, then collect the one before it: on a GPU the device computes a batch
        while this process prepares the next (one batch in flight; the batches and their
        results are those of a strictly serial loop)."""
        pieces = self._take(n)
        self.queued -= n
        launched = self._launch(pieces)
        self._collect()
        self.in_flight = launched

    def _launch(self, pieces: list[_Piece]) -> _Launched:
        """uint8 views -> the device: conversion, inpainting, normalisation, the model, softmax
        (queued on the device; nothing waits for it here)."""
        fill = [p.task.protocol.fill for p in pieces for _ in range(p.pixels.shape[0])]
        with torch.inference_mode():
            x = views_to_input(self.runtime.to_input([p.pixels for p in pieces]), fill, self.model.preprocessing)
            with self.runtime.autocast():
                logits, embedding = self.model(x)
            return _Launched(pieces, logits.float().softmax(dim=1), embedding)

    def _collect(self) -> None:
        """Read back the batch in flight (probabilities, and each view's knn_dist with an index)
        and hand its views to their tasks."""
        if self.in_flight is None:
            return
        launched, self.in_flight = self.in_flight, None
        pieces = launched.pieces
        probs = launched.probs.cpu().numpy()
        knn = np.full(len(probs), np.nan)
        if self.index is not None:
            ids = [p.task.image_id for p in pieces for _ in range(p.pixels.shape[0])]
            emb = np.ascontiguousarray(launched.embedding.float().cpu().numpy(), dtype=np.float32)
            knn = np.asarray(self.index.knn_dist(emb, k=self.k, image_ids=ids), dtype=np.float64)
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
