"""Candidate search and exact re-ranking over the stored embeddings.

- ``Searcher``: a FAISS index ready for queries, on the CPU, where an exact index goes through
  ``Bf16Screen`` when the CPU has native bf16 (on a GPU, ``torch_knn`` searches instead).
- ``rerank``: exact square-rooted L2 distances of candidate rows from the memory-mapped
  shards, excluded rows dropped, sorted by (distance, row).
- ``exact_knn``: exhaustive search over every shard, for queries an approximate index left
  short of candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import torch

from biasprobe.index.store import VectorStore

__all__ = ["Bf16Screen", "Searcher", "bf16_supported", "exact_knn", "rerank"]

log = logging.getLogger(__name__)

_BLOCK_FLOATS = 1 << 24  # floats per re-ranking block (64 MB)


def _set_search_params(space: Any, index: faiss.Index, params: str) -> None:
    """``space.set_index_parameters(index, "nprobe=8")``; ``space`` is Any because faiss's
    stub lists that method twice without ``@overload``, so only the int variant type-checks."""
    space.set_index_parameters(index, params)


def bf16_supported() -> bool:
    """Whether this CPU has native bf16 matrix products (AVX512-BF16 / AMX) through oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


class Bf16Screen:
    """Exact-search candidates from a bf16 matrix product with a proven error bound.

    Ranking by L2 distance is ranking by ``s = q.x - |x|^2 / 2``. With q~, x~ the bf16
    roundings, ``|q.x - q~.x~| <= |q - q~| |x| + |q~| |x - x~|`` (Cauchy-Schwarz), and fp32
    accumulation over D terms adds at most ``D 2^-24 |q~| |x~|``; the residual norms are
    measured, so the bound B is rigorous and about 4x tighter than the worst case. Every true
    top-k row scores at least (k-th best computed score) - 2B: all rows above that line are
    candidates, and exact fp32 re-ranking picks the k best. A query with more such rows than
    ``keep`` falls back to FAISS's fp32 search. About 5x faster than IndexFlatL2 on CPUs with
    native bf16 matrix products.
    """

    def __init__(self, store: VectorStore, *, keep: int = 64) -> None:
        self.keep = keep
        self.count = store.count
        self.dim = store.dim
        self.matrix = torch.empty((store.count, store.dim), dtype=torch.bfloat16)
        half_sq = np.empty(store.count, dtype=np.float32)
        max_norm = max_res = max_norm_b = 0.0
        for first, block in store.blocks():
            x = torch.from_numpy(block)
            xb = x.to(torch.bfloat16)
            self.matrix[first : first + len(block)] = xb
            half_sq[first : first + len(block)] = 0.5 * np.einsum("ij,ij->i", block, block)
            max_norm = max(max_norm, float(x.double().norm(dim=1).max()))
            max_res = max(max_res, float((x.double() - xb.double()).norm(dim=1).max()))
            max_norm_b = max(max_norm_b, float(xb.double().norm(dim=1).max()))
        self.half_sq = torch.from_numpy(half_sq)
        self.max_norm, self.max_res, self.max_norm_b = max_norm, max_res, max_norm_b

    def bound(self, q: torch.Tensor, qb: torch.Tensor) -> torch.Tensor:
        """Per query: the largest possible |computed score - true score| over every row."""
        gamma = self.dim * 2.0**-24 / (1 - self.dim * 2.0**-24)
        q_res = (q.double() - qb.double()).norm(dim=1)
        qb_norm = qb.double().norm(dim=1)
        b = q_res * self.max_norm + qb_norm * self.max_res + gamma * qb_norm * self.max_norm_b
        b = b + gamma * self.max_norm**2  # the fp32 |x|^2 / 2 term
        return (1.01 * b + 1e-7).float()

    def candidates(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidate rows (n, k + keep) padded with -1, and which queries need a fallback."""
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        width = min(self.count, k + self.keep)
        rows = np.full((len(q), width), -1, dtype=np.int64)
        overflow = np.zeros(len(q), dtype=bool)
        for lo in range(0, len(q), 256):
            qc = q[lo : lo + 256]
            qb = qc.to(torch.bfloat16)
            best_s = torch.full((len(qc), 0), -torch.inf)
            best_i = torch.zeros((len(qc), 0), dtype=torch.int64)
            for first in range(0, self.count, 32768):
                scores = (qb @ self.matrix[first : first + 32768].T).float() - self.half_sq[first : first + 32768]
                top = torch.topk(scores, min(width, scores.shape[1]), dim=1)
                merged_s = torch.cat([best_s, top.values], dim=1)
                merged_i = torch.cat([best_i, top.indices + first], dim=1)
                keep = torch.topk(merged_s, min(width, merged_s.shape[1]), dim=1)
                best_s, best_i = keep.values, torch.gather(merged_i, 1, keep.indices)
            line = best_s[:, min(k, width) - 1] - 2 * self.bound(qc, qb)
            inside = best_s >= line[:, None]
            rows[lo : lo + len(qc)] = torch.where(inside, best_i, -1).numpy()
            if width < self.count:
                overflow[lo : lo + len(qc)] = inside[:, -1].numpy()
        return rows, overflow


@dataclass
class Searcher:
    """A FAISS index ready for queries on the CPU, search parameters applied.

    Given the stored vectors of an exact (Flat) index on a CPU with native bf16, queries
    go through ``Bf16Screen`` (provably the same neighbours after exact re-ranking).
    """

    index: faiss.Index
    search_params: str = ""
    store: VectorStore | None = None

    def __post_init__(self) -> None:
        self.screen: Bf16Screen | None = None
        if self.search_params:
            _set_search_params(faiss.ParameterSpace(), self.index, self.search_params)
        exact = isinstance(self.index, faiss.IndexFlat) and self.index.metric_type == faiss.METRIC_L2
        if exact and self.store is not None and self.store.count > 0 and bf16_supported():
            self.screen = Bf16Screen(self.store)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Candidate rows (n, >= k) int64 including the k nearest; -1 fills empty slots."""
        k = min(k, self.ntotal)
        if k < 1 or len(queries) == 0:
            return np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.screen is not None:
            rows, overflow = self.screen.candidates(queries, k)
            if overflow.any():
                log.debug("%d queries with many near-ties: fp32 search", int(overflow.sum()))
                _d, exact = self.index.search(queries[overflow], rows.shape[1])
                rows[overflow] = exact
            return rows
        _d, rows = self.index.search(queries, k)
        return rows.astype(np.int64, copy=False)


def rerank(
    store: VectorStore,
    queries: np.ndarray,
    candidates: np.ndarray,
    *,
    k: int,
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances to candidate rows, excluded and missing (-1) rows dropped, best k.

    Returns ``(distances (n, k) float32, rows (n, k) int64)``, sorted by distance then row;
    slots without a candidate hold ``inf`` and -1. ``excluded`` is a bool mask like
    ``candidates`` (True = drop).
    """
    n, width = candidates.shape
    dist = np.full((n, width), np.inf, dtype=np.float32)
    valid = candidates >= 0
    if excluded is not None:
        valid &= ~excluded
    step = max(1, _BLOCK_FLOATS // max(1, width * store.dim))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        rows = np.where(valid[lo:hi], candidates[lo:hi], 0)
        diff = store.take(rows) - queries[lo:hi, None, :].astype(np.float32)
        d = np.sqrt(np.maximum(np.einsum("ijk,ijk->ij", diff, diff), 0)).astype(np.float32)
        dist[lo:hi] = np.where(valid[lo:hi], d, np.inf)
    cand = np.where(np.isfinite(dist), candidates, np.iinfo(np.int64).max)
    order = np.lexsort((cand, dist), axis=-1)[:, :k]
    out_d = np.take_along_axis(dist, order, axis=1)
    out_r = np.take_along_axis(candidates, order, axis=1)
    out_r = np.where(np.isfinite(out_d), out_r, -1)
    if out_d.shape[1] < k:
        pad = k - out_d.shape[1]
        out_d = np.pad(out_d, ((0, 0), (0, pad)), constant_values=np.inf)
        out_r = np.pad(out_r, ((0, 0), (0, pad)), constant_values=-1)
    return out_d, out_r


def exact_knn(store: VectorStore, queries: np.ndarray, k: int) -> np.ndarray:
    """Exhaustive search over every shard (faiss.knn per block, merged): rows (n, k) int64."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_d = np.full((len(queries), k), np.inf, dtype=np.float32)
    best_r = np.full((len(queries), k), -1, dtype=np.int64)
    for first, block in store.blocks():
        kk = min(k, block.shape[0])
        d, r = faiss.knn(queries, block, kk)
        d_all = np.concatenate([best_d, d], axis=1)
        r_all = np.concatenate([best_r, r.astype(np.int64) + first], axis=1)
        order = np.argsort(d_all, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(d_all, order, axis=1)
        best_r = np.take_along_axis(r_all, order, axis=1)
    return best_r
