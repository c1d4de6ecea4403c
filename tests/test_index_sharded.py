"""An index built from shards (one trained index, a copy per shard, merged in shard order)
equals one index that every shard was added to in turn: byte for byte."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from biasprobe.index.faiss_build import (
    build_faiss_index,
    choose_factory,
    default_search_params,
    ivf_lists,
    merge_shards,
    shard_index,
    train_index,
)
from biasprobe.index.store import VectorStore


def _store(tmp_path: Path, sizes: list[int], dim: int = 16) -> tuple[VectorStore, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, dim)).astype(np.float32)
    data = centres[rng.integers(0, 12, sum(sizes))] + 0.3 * rng.normal(size=(sum(sizes), dim)).astype(np.float32)
    first = 0
    for i, size in enumerate(sizes):
        np.save(tmp_path / f"emb_{i:04d}.npy", data[first : first + size])
        first += size
    return VectorStore(sorted(tmp_path.glob("emb_*.npy"))), data


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF8,PQ4x4"])
def test_sharded_build_is_byte_identical_to_a_sequential_one(tmp_path: Path, factory: str) -> None:
    store, data = _store(tmp_path, [700, 0, 333, 1000, 1])
    trained = train_index(store, factory, seed=3)
    sequential = faiss.clone_index(trained)
    for lo, hi in ((0, 700), (700, 1033), (1033, 2033), (2033, 2034)):
        sequential.add(data[lo:hi])
    built = build_faiss_index(store, factory, seed=3)
    assert built.ntotal == 2034 == store.count
    assert faiss.serialize_index(built).tobytes() == faiss.serialize_index(sequential).tobytes()
    # the shards indexed out of order (as parallel workers finish) and merged in shard order: the same
    parts = {i: shard_index(trained, store.shard(i)) for i in reversed(range(store.shards))}
    merged = merge_shards(trained, (parts[i] for i in range(store.shards)))
    assert faiss.serialize_index(merged).tobytes() == faiss.serialize_index(sequential).tobytes()
    q = data[:5] + 0.01
    np.testing.assert_array_equal(built.search(q, 4)[1], sequential.search(q, 4)[1])


def test_ivf_list_count_follows_faiss_guidance() -> None:
    for n in (300_000, 1_000_000, 1_281_167, 5_000_000, 10_000_000):
        nlist = ivf_lists(n)
        assert 4 * np.sqrt(n) <= nlist <= 16 * np.sqrt(n), (n, nlist)
        assert nlist & (nlist - 1) == 0 and n / nlist >= 39
    assert ivf_lists(1_281_167) == 8192  # ImageNet's training set
    assert ivf_lists(1000) == 16 and ivf_lists(50_000) == 1024  # few vectors: at least 39 per list
    assert choose_factory(1_281_167, 1280, memory_budget=1 << 34) == "IVF8192,Flat"
    assert default_search_params("IVF8192,Flat") == "nprobe=64"


def test_graph_index_is_built_in_shard_order(tmp_path: Path) -> None:
    store, data = _store(tmp_path, [300, 200])
    built = build_faiss_index(store, "HNSW8")
    sequential = faiss.index_factory(16, "HNSW8")
    sequential.add(data[:300])
    sequential.add(data[300:])
    assert faiss.serialize_index(built).tobytes() == faiss.serialize_index(sequential).tobytes()
