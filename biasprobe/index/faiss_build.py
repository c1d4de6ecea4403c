"""Which FAISS index to build, building it from the stored embeddings, and its file.

- ``choose_factory(n, dim)``: exact ``Flat`` up to ``FLAT_MAX`` vectors (and while the
  vectors fit the memory budget), then ``IVF{nlist},Flat`` with ``nlist`` a power of two near
  ``2 sqrt(n)`` (autofaiss-like; at least 64 vectors per list; on clustered data
  fewer lists leave a few huge ones that make queries slow), or
  ``IVF{nlist},PQ{m}`` when the raw vectors do not fit the budget. Distances are always
  re-ranked exactly from the stored vectors (``search.rerank``), so compression only costs
  candidates.
- ``build_faiss_index(store, factory)``: train on a seeded sample, add shard by shard.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import faiss

from biasprobe.core.errors import InputError
from biasprobe.core.io import atomic_write_bytes
from biasprobe.index.store import VectorStore

__all__ = [
    "FLAT_MAX",
    "build_faiss_index",
    "check_factory",
    "choose_factory",
    "default_memory_budget",
    "default_search_params",
    "read_index",
    "write_index",
]

log = logging.getLogger(__name__)

FLAT_MAX = 200_000


def default_memory_budget() -> int:
    """Bytes the index may hold in RAM: a quarter of the machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 4 << 30


def _pow2_near(x: float) -> int:
    return 1 << max(0, round(math.log2(max(x, 1.0))))


def choose_factory(n: int, dim: int, *, memory_budget: int | None = None) -> str:
    """A FAISS factory string for ``n`` vectors of ``dim`` floats within ``memory_budget`` bytes."""
    budget = default_memory_budget() if memory_budget is None else memory_budget
    raw = n * dim * 4
    if n <= FLAT_MAX and raw <= budget:
        return "Flat"
    nlist = max(16, min(_pow2_near(2 * math.sqrt(n)), 65536, 1 << int(math.log2(max(n / 64, 1)))))
    if raw <= budget:
        return f"IVF{nlist},Flat"
    divisors = [m for m in range(1, dim + 1) if dim % m == 0 and m <= 64]
    fitting = [m for m in divisors if n * (m + 8) <= budget] or [divisors[0]]
    return f"IVF{nlist},PQ{max(fitting)}"


def default_search_params(factory: str) -> str:
    """FAISS ParameterSpace settings for queries: nprobe = nlist / 128 for IVF (at least 8)."""
    head = factory.split(",")[0]
    if head.startswith("IVF"):
        nlist = int("".join(ch for ch in head[3:] if ch.isdigit()) or 1)
        return f"nprobe={min(nlist, max(8, nlist // 128))}"
    if head.startswith("HNSW"):
        return "efSearch=128"
    return ""


def check_factory(factory: str, dim: int) -> None:
    """Refuse a factory string FAISS cannot build for ``dim`` (before any work is done)."""
    try:
        faiss.index_factory(dim, factory, faiss.METRIC_L2)
    except RuntimeError as exc:
        raise InputError(f"FAISS cannot build the factory string {factory!r} for dimension {dim}: {str(exc).splitlines()[-1].split(': ')[-1]}") from exc


def build_faiss_index(store: VectorStore, factory: str, *, seed: int = 0, train_size: int | None = None) -> faiss.Index:
    """Train ``factory`` on a seeded sample (64 points per list by default) and add every shard."""
    check_factory(factory, store.dim)
    index = faiss.index_factory(store.dim, factory, faiss.METRIC_L2)
    if not index.is_trained:
        ivf = faiss.try_extract_index_ivf(index)
        want = train_size or max(10_000, 64 * (ivf.nlist if ivf is not None else 256))
        rows = store.sample(want, seed=seed)
        log.info("training %s on %d vectors", factory, rows.size)
        if ivf is not None:
            ivf.cp.seed = seed
        index.train(store.take(rows))
    for _first, block in store.blocks():
        index.add(block)
    return index


def write_index(index: faiss.Index, path: Path) -> None:
    """Serialise a (CPU) index atomically."""
    atomic_write_bytes(path, faiss.serialize_index(index).tobytes())


def read_index(path: Path) -> faiss.Index:
    """Read an index written by ``write_index``."""
    return faiss.read_index(str(path))
