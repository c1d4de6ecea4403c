"""Which FAISS index to build, building it from the stored embeddings, and its file.

- ``choose_factory(n, dim)``: exact ``Flat`` up to ``FLAT_MAX`` vectors (and while the
  vectors fit the memory budget), then ``IVF{nlist},Flat`` with ``nlist`` from FAISS's own
  guidance, between ``4 sqrt(n)`` and ``16 sqrt(n)`` lists (the power of two nearest
  ``8 sqrt(n)``, at most one list per 39 vectors, FAISS's minimum of training points per
  centroid), or ``IVF{nlist},PQ{m}`` when the raw vectors do not fit the budget. Distances
  are always re-ranked exactly from the stored vectors (``search.rerank``), so compression
  only costs candidates.
- ``build_faiss_index(store, factory)``: train one index on a seeded sample
  (``train_index``), add each embedding shard to its own copy of it (``shard_index``), and
  merge the copies in shard order (``merge_shards``). The shard copies are independent, so
  they can be made by several workers (``mapper``); the result is byte-identical to adding
  every shard to one index in order (tests/test_index_sharded.py). A graph index (HNSW)
  cannot be merged and is built by adding the shards in order.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import faiss
import numpy as np

from biasprobe.core.errors import InputError
from biasprobe.core.io import atomic_write_bytes
from biasprobe.index.store import VectorStore

__all__ = [
    "FLAT_MAX",
    "MIN_TRAIN_PER_LIST",
    "build_faiss_index",
    "check_factory",
    "choose_factory",
    "default_memory_budget",
    "default_search_params",
    "ivf_lists",
    "merge_shards",
    "read_index",
    "shard_index",
    "train_index",
    "write_index",
]

log = logging.getLogger(__name__)

FLAT_MAX = 200_000
MIN_TRAIN_PER_LIST = 39  # FAISS warns below 39 training points per centroid
NPROBE_DIVISOR = 128  # nprobe = nlist / 128: recall@10 measured in benchmarks/bench_ann.py


def default_memory_budget() -> int:
    """Bytes the index may hold in RAM: a quarter of the machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 4 << 30


def _pow2_near(x: float) -> int:
    return 1 << max(0, round(math.log2(max(x, 1.0))))


def ivf_lists(n: int) -> int:
    """IVF list count for ``n`` vectors: the power of two nearest ``8 sqrt(n)`` (so between
    FAISS's ``4 sqrt(n)`` and ``16 sqrt(n)``), at most ``n / 39`` and 65536, at least 16."""
    largest = 1 << int(math.log2(max(n / MIN_TRAIN_PER_LIST, 1)))
    return max(16, min(_pow2_near(8 * math.sqrt(n)), 65536, largest))


def choose_factory(n: int, dim: int, *, memory_budget: int | None = None) -> str:
    """A FAISS factory string for ``n`` vectors of ``dim`` floats within ``memory_budget`` bytes."""
    budget = default_memory_budget() if memory_budget is None else memory_budget
    raw = n * dim * 4
    if n <= FLAT_MAX and raw <= budget:
        return "Flat"
    nlist = ivf_lists(n)
    if raw <= budget:
        return f"IVF{nlist},Flat"
    divisors = [m for m in range(1, dim + 1) if dim % m == 0 and m <= 64]
    fitting = [m for m in divisors if n * (m + 8) <= budget] or [divisors[0]]
    return f"IVF{nlist},PQ{max(fitting)}"


def default_search_params(factory: str) -> str:
    """FAISS ParameterSpace settings for queries: nprobe = nlist / NPROBE_DIVISOR for IVF (at
    least 8; docs/scale.md gives the recall@10 measured)."""
    head = factory.split(",")[0]
    if head.startswith("IVF"):
        nlist = int("".join(ch for ch in head[3:] if ch.isdigit()) or 1)
        return f"nprobe={min(nlist, max(8, nlist // NPROBE_DIVISOR))}"
    if head.startswith("HNSW"):
        return "efSearch=128"
    return ""


def check_factory(factory: str, dim: int) -> None:
    """Refuse a factory string FAISS cannot build for ``dim`` (before any work is done)."""
    try:
        faiss.index_factory(dim, factory, faiss.METRIC_L2)
    except RuntimeError as exc:
        raise InputError(f"FAISS cannot build the factory string {factory!r} for dimension {dim}: {str(exc).splitlines()[-1].split(': ')[-1]}") from exc


def train_index(store: VectorStore, factory: str, *, seed: int = 0, train_size: int | None = None) -> faiss.Index:
    """An empty index of ``factory``, trained (when it needs training) on a seeded sample of
    ``store``: 64 points per IVF list (at least 10,000)."""
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
    return index


def shard_index(trained: faiss.Index, vectors: np.ndarray) -> faiss.Index:
    """A copy of the trained, empty index holding ``vectors`` (one shard's rows, in order)."""
    part = faiss.clone_index(trained)
    part.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return part


def merge_shards(trained: faiss.Index, parts: Iterable[faiss.Index]) -> faiss.Index:
    """Merge shard indexes into a copy of ``trained``, in the order given: row ids follow the
    shards' order, as when every shard is added to one index in turn."""
    merged = faiss.clone_index(trained)
    ivf = faiss.try_extract_index_ivf(merged) is not None  # IVF lists store ids; flat codes number rows implicitly
    for part in parts:
        if part.ntotal:
            merged.merge_from(part, merged.ntotal if ivf else 0)
    return merged


def _mergeable(index: faiss.Index) -> bool:
    """Whether shard indexes of this kind can be merged (IVF and flat codes; not graphs such as HNSW)."""
    return faiss.try_extract_index_ivf(index) is not None or isinstance(index, faiss.IndexFlatCodes)


def build_faiss_index(
    store: VectorStore,
    factory: str,
    *,
    seed: int = 0,
    train_size: int | None = None,
    mapper: Callable[[Callable[[np.ndarray], faiss.Index], Iterable[np.ndarray]], Iterable[faiss.Index]] = map,
) -> faiss.Index:
    """Train ``factory`` once (``train_index``), index each shard of ``store`` on its own copy
    (``shard_index``, through ``mapper``: ``map`` here, a parallel map elsewhere) and merge
    the shard indexes in shard order (``merge_shards``)."""
    trained = train_index(store, factory, seed=seed, train_size=train_size)
    shards = (store.shard(i) for i in range(store.shards))
    if not _mergeable(trained):  # e.g. HNSW: one graph, built by adding the shards in order
        for vectors in shards:
            trained.add(vectors)
        return trained
    return merge_shards(trained, mapper(functools.partial(shard_index, trained), shards))


def write_index(index: faiss.Index, path: Path) -> None:
    """Serialise a (CPU) index atomically."""
    atomic_write_bytes(path, faiss.serialize_index(index).tobytes())


def read_index(path: Path) -> faiss.Index:
    """Read an index written by ``write_index``."""
    return faiss.read_index(str(path))
