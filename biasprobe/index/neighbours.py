"""The neighbour search of docs/protocols.md section 4: the k nearest training rows of each
query by exact square-rooted L2 distance, leaving out the query's own image.

Candidates come from FAISS (``Searcher``) and are re-ranked exactly from the stored vectors;
every training row whose image id is the query's is left out, and identical files are one
image (only the first row of each id can be a neighbour). A query an approximate index
leaves short of candidates is searched exhaustively. ``build_index`` uses this for the
leave-one-out reference, ``TrainingIndex`` for every query on the CPU.

``ById`` holds what both searches share: the stored vectors, the id of every row and the
leave-one-out bookkeeping; ``torch_knn.TorchNeighbours`` is the same search in torch, for GPUs.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from biasprobe.core.errors import InputError
from biasprobe.index.search import Searcher, exact_knn, rerank
from biasprobe.index.store import VectorStore

__all__ = ["ById", "Neighbours"]

log = logging.getLogger(__name__)

_QUERY_CHUNK = 2048


class ById(ABC):
    """Stored vectors with the image id of every row: the leave-one-out bookkeeping of a search.

    A search (``Neighbours``, ``TorchNeighbours``) adds ``knn(q, k, image_ids, *, progress, desc)``:
    sorted exact distances (n, k) float32 and row positions (n, k) int64, every row whose id is
    the query's left out, and only the first row of each id a possible neighbour.
    """

    def __init__(self, ids: np.ndarray, store: VectorStore) -> None:
        self.store = store
        self.ids = np.asarray(ids, dtype="U16")
        if len(self.ids) != store.count:
            raise InputError(f"{len(self.ids)} ids and {store.count} stored vectors do not match")
        self.unique, self.codes = np.unique(self.ids, return_inverse=True)
        # Identical files are one image: only the first row of each id can be a neighbour.
        self.first_rows = np.unique(self.codes, return_index=True)[1].astype(np.int64)
        self._canonical = np.zeros(len(self.codes), bool)
        self._canonical[self.first_rows] = True
        self._max_copies = int(np.bincount(self.codes).max(initial=1)) if len(self.codes) else 1

    @property
    def count(self) -> int:
        """Number of stored rows (duplicate files are rows sharing one id)."""
        return int(self.store.count)

    @property
    def unique_count(self) -> int:
        """Number of distinct images."""
        return len(self.unique)

    def queries(self, embeddings: np.ndarray) -> np.ndarray:
        """Query embeddings as a contiguous float32 (n, dim) array, or a one-line error."""
        q = np.asarray(embeddings, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.store.dim:
            raise InputError(f"expected embeddings of shape (n, {self.store.dim}), got {q.shape}")
        return np.ascontiguousarray(q)

    def query_codes(self, image_ids: Iterable[str] | None, n: int) -> np.ndarray:
        """Per query: the code of its id among the stored ids, or -1."""
        if image_ids is None:
            return np.full(n, -1, dtype=np.int64)
        ids = np.asarray(list(image_ids), dtype="U16")
        if ids.shape != (n,):
            raise InputError(f"expected {n} image ids, one per embedding, got {ids.shape[0]}")
        pos = np.clip(np.searchsorted(self.unique, ids), 0, max(len(self.unique) - 1, 0))
        found = self.unique[pos] == ids if len(self.unique) else np.zeros(n, bool)
        return np.where(found, pos, -1).astype(np.int64)

    @abstractmethod
    def knn(
        self, q: np.ndarray, k: int, image_ids: Iterable[str] | None = None, *, progress: bool = False, desc: str = "knn"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted exact distances (n, k) float32 and row positions (n, k) int64 of checked queries."""


class Neighbours(ById):
    """Exact k-nearest training rows, by image id leave-one-out, over a store and its FAISS index.

    ``ids`` holds the image id of every stored row; ``exact`` says whether the FAISS index is
    exhaustive (``Flat``), in which case no extra candidates are fetched for re-ranking.
    """

    def __init__(self, ids: np.ndarray, store: VectorStore, searcher: Searcher, *, exact: bool) -> None:
        super().__init__(ids, store)
        self.searcher = searcher
        self.exact = exact
        if store.count != searcher.ntotal:
            raise InputError(f"{len(self.ids)} ids, {store.count} stored vectors and {searcher.ntotal} indexed vectors do not match")

    def knn(
        self, q: np.ndarray, k: int, image_ids: Iterable[str] | None = None, *, progress: bool = False, desc: str = "knn"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted exact distances (n, k) float32 and row positions (n, k) int64 of checked queries
        (with ``progress``, a bar labelled ``desc`` counts the queries searched)."""
        codes = self.query_codes(image_ids, len(q))
        multiplicity = np.bincount(self.codes, minlength=len(self.unique))
        excluded_n = np.where(codes >= 0, multiplicity[np.maximum(codes, 0)], 0)
        margin = 0 if self.exact else max(k, 10)
        out_d = np.empty((len(q), k), np.float32)
        out_r = np.empty((len(q), k), np.int64)
        with tqdm(total=len(q), desc=desc, unit="img", disable=not progress) as bar:
            for lo in range(0, len(q), _QUERY_CHUNK):
                hi = min(len(q), lo + _QUERY_CHUNK)
                qc, cc = q[lo:hi], codes[lo:hi]
                width = k * self._max_copies + int(excluded_n[lo:hi].max(initial=0)) + margin
                d, r = self._search_rerank(qc, cc, width, k)
                out_d[lo:hi], out_r[lo:hi] = d, r
                bar.update(hi - lo)
        return out_d, out_r

    def _search_rerank(self, q: np.ndarray, codes: np.ndarray, width: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        cand = self.searcher.search(q, width)
        d, r = self._rerank(q, codes, cand, k)
        short = (r < 0).any(axis=1)
        if short.any():  # an approximate index found too few candidates: search those exhaustively
            log.debug("%d queries short of candidates: exhaustive search", int(short.sum()))
            cand2 = exact_knn(self.store, q[short], min(width, self.count))
            d[short], r[short] = self._rerank(q[short], codes[short], cand2, k)
        return d, r

    def _rerank(self, q: np.ndarray, codes: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.maximum(cand, 0)
        excluded = ((self.codes[rows] == codes[:, None]) & (codes[:, None] >= 0)) | ~self._canonical[rows]
        return rerank(self.store, q, cand, k=k, excluded=excluded)
