"""The stored embeddings of an index: row-aligned float32 shards read memory-mapped as one array.

Given a ``check`` (``TrainingIndex`` passes its ``IndexFiles.verify``), each shard is checked
against the digest recorded at build time once, before its first vectors are read: opening
an index costs no hashing of the shards, a read pays for the unchecked shards it needs, and
those are checked several at a time (``core.digests.in_parallel``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from biasprobe.core.digests import in_parallel
from biasprobe.core.errors import InputError

__all__ = ["VectorStore"]


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class VectorStore:
    """Row-aligned float32 shards (``emb_XXXX.npy``) read memory-mapped, as one (N, dim) array."""

    def __init__(self, paths: Sequence[Path], *, check: Callable[[Path], None] | None = None) -> None:
        self._check = check
        arrays = [self._load(Path(p)) for p in paths]
        kept = [(Path(p), a) for p, a in zip(paths, arrays, strict=True) if a.shape[0] > 0]
        self.paths = [p for p, _ in kept]
        self.parts = [a for _, a in kept]
        self._checked = [check is None] * len(self.parts)
        dims = {a.shape[1] for a in self.parts}
        if len(dims) > 1:
            raise InputError(f"embedding shards disagree on the dimension: {sorted(dims)}")
        self.dim = dims.pop() if dims else 0
        sizes = [a.shape[0] for a in self.parts]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.count = int(self.offsets[-1])

    def _load(self, path: Path) -> np.ndarray:
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            if self._check is not None:
                self._check(path)  # a shard that changed since it was written: say so
            raise InputError(f"cannot read the embedding shard {path}: {_first_line(exc)}") from exc
        if array.ndim != 2 or array.dtype != np.float32:
            if self._check is not None:
                self._check(path)
            raise InputError(f"{path} is not an embedding shard: expected float32 (rows, dim), got {array.dtype} {array.shape}")
        return array

    def _ensure(self, shards: Iterable[int]) -> None:
        """Check the shards among ``shards`` not checked yet (several at a time)."""
        todo = sorted({int(s) for s in shards if not self._checked[int(s)]})
        if not todo:
            return
        assert self._check is not None
        in_parallel(self._check, [self.paths[s] for s in todo])
        for s in todo:
            self._checked[s] = True

    @property
    def shards(self) -> int:
        """Number of non-empty shards."""
        return len(self.parts)

    def shard(self, number: int) -> np.ndarray:
        """Every vector of non-empty shard ``number``, as a float32 array (a checked copy)."""
        self._ensure([number])
        return np.array(self.parts[number], dtype=np.float32)

    def blocks(self, rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 block) over every stored vector, in order."""
        self._ensure(range(len(self.parts)))
        for part, offset in zip(self.parts, self.offsets[:-1], strict=True):
            for lo in range(0, part.shape[0], rows):
                yield int(offset) + lo, np.array(part[lo : lo + rows], dtype=np.float32)  # a writable copy

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors at global row positions ``rows`` (any shape), float32 (..., dim)."""
        flat = np.asarray(rows, dtype=np.int64).ravel()
        out = np.empty((flat.size, self.dim), dtype=np.float32)
        shard = np.searchsorted(self.offsets, flat, side="right") - 1
        needed = np.unique(shard)
        self._ensure(needed)
        for s in needed:
            mask = shard == s
            out[mask] = self.parts[s][flat[mask] - self.offsets[s]]
        return out.reshape((*np.shape(rows), self.dim))

    def sample(self, n: int, *, seed: int) -> np.ndarray:
        """A seeded sample of ``n`` rows (all rows when there are fewer), sorted."""
        if n >= self.count:
            return np.arange(self.count, dtype=np.int64)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(self.count, size=n, replace=False)).astype(np.int64)
