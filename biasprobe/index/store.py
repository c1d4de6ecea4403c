"""The stored embeddings of an index: row-aligned float32 shards read memory-mapped as one array."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from biasprobe.core.errors import InputError

__all__ = ["VectorStore"]


class VectorStore:
    """Row-aligned float32 shards (``emb_XXXX.npy``) read memory-mapped, as one (N, dim) array."""

    def __init__(self, paths: Sequence[Path]) -> None:
        arrays = [np.load(p, mmap_mode="r") for p in paths]
        self.parts = [a for a in arrays if a.shape[0] > 0]
        dims = {a.shape[1] for a in self.parts}
        if len(dims) > 1:
            raise InputError(f"embedding shards disagree on the dimension: {sorted(dims)}")
        self.dim = dims.pop() if dims else 0
        sizes = [a.shape[0] for a in self.parts]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.count = int(self.offsets[-1])

    def blocks(self, rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 block) over every stored vector, in order."""
        for part, offset in zip(self.parts, self.offsets[:-1], strict=True):
            for lo in range(0, part.shape[0], rows):
                yield int(offset) + lo, np.array(part[lo : lo + rows], dtype=np.float32)  # a writable copy

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors at global row positions ``rows`` (any shape), float32 (..., dim)."""
        flat = np.asarray(rows, dtype=np.int64).ravel()
        out = np.empty((flat.size, self.dim), dtype=np.float32)
        shard = np.searchsorted(self.offsets, flat, side="right") - 1
        for s in np.unique(shard):
            mask = shard == s
            out[mask] = self.parts[s][flat[mask] - self.offsets[s]]
        return out.reshape((*np.shape(rows), self.dim))

    def sample(self, n: int, *, seed: int) -> np.ndarray:
        """A seeded sample of ``n`` rows (all rows when there are fewer), sorted."""
        if n >= self.count:
            return np.arange(self.count, dtype=np.int64)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(self.count, size=n, replace=False)).astype(np.int64)
