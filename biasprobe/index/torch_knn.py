"""The neighbour search of docs/protocols.md section 4 in torch, for a GPU (or any torch device).

Same contract as ``Neighbours.knn`` (the FAISS path): the k nearest training rows of each query
by exact square-rooted L2 distance, every row whose image id is the query's left out, only the
first row of each id a possible neighbour (identical files are one image), sorted by
(distance, row). The index on disk is not read: the stored vectors are.

How: the first rows of the ids (the only possible neighbours) are held on the device as float32
(1.28M x 1280 is 6.5 GB), with their squared norms. Queries go in chunks; squared distances
``|q|^2 + |x|^2 - 2 q.x`` come from matrix products over chunks of rows (IEEE fp32: TF32 off),
each chunk's ``width`` smallest kept with ``torch.topk``. The candidates are then re-ranked
exactly from the stored vectors (``||q - x||`` computed directly, as ``search.rerank`` does),
the query's own image dropped. The candidates provably hold the true k nearest when the k-th
exact squared distance plus the rounding bound of the matrix product (``_bound``) is below the
largest candidate's computed one; a query for which that does not hold is searched again with
twice the width, until it holds or every row is a candidate.

Memory: the rows held on the device, plus a working set kept under ``memory_budget`` bytes
(default 1 GiB): a (queries x rows) score block and the (queries x width x dim) re-ranking
gather.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import torch
from tqdm import tqdm

from biasprobe.engine.runtime import set_fp32_math
from biasprobe.index.neighbours import ById
from biasprobe.index.store import VectorStore

__all__ = ["DEFAULT_MEMORY_BUDGET", "TorchNeighbours"]

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = 1 << 30
_MARGIN = 32  # candidates beyond k + 1 (the query's own image), so the proof rarely needs a second pass
_U = 2.0**-24  # fp32 unit roundoff


class TorchNeighbours(ById):
    """Exact k-nearest training rows, by image id leave-one-out, computed with torch on ``device``."""

    def __init__(self, ids: np.ndarray, store: VectorStore, device: torch.device | str = "cpu", *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:  # fmt: skip
        super().__init__(ids, store)
        self.device = torch.device(device)
        self.memory_budget = int(memory_budget)
        set_fp32_math(ieee=True)  # the bound below holds for IEEE fp32 products, not TF32
        rows = np.sort(self.first_rows)  # increasing, so a local index orders like its global row
        self.rows = torch.from_numpy(rows).to(self.device)
        self.matrix = torch.empty((len(rows), store.dim), dtype=torch.float32, device=self.device)
        self.sq_norms = torch.empty(len(rows), dtype=torch.float32, device=self.device)
        for first, block in store.blocks():
            wanted = rows[(rows >= first) & (rows < first + len(block))]
            if len(wanted):
                at = int(np.searchsorted(rows, wanted[0]))
                part = torch.from_numpy(block[wanted - first]).to(self.device)
                self.matrix[at : at + len(wanted)] = part
                self.sq_norms[at : at + len(wanted)] = (part * part).sum(dim=1)
        self.max_norm = float(self.sq_norms.max().sqrt()) if len(rows) else 0.0
        # code -> local index of that id's first row (every code has exactly one)
        local_of_code = np.empty(len(self.unique), dtype=np.int64)
        local_of_code[self.codes[rows]] = np.arange(len(rows))
        self._local_of_code = torch.from_numpy(local_of_code).to(self.device)

    def _bound(self, q_sq: torch.Tensor) -> torch.Tensor:
        """Per query: the largest |computed - true| squared distance over every row (fp32 rounding
        of the dot product over dim terms, of the norms and of the two additions)."""
        dim = max(self.store.dim, 1)
        gamma = (dim + 2) * _U / (1 - (dim + 2) * _U)
        q_norm = q_sq.double().sqrt()
        b = gamma * (q_sq.double() + self.max_norm**2 + 2 * q_norm * self.max_norm)
        return (1.01 * b + 1e-12).float()

    def _chunks(self, width: int) -> tuple[int, int]:
        """Queries per chunk and rows per score block within the memory budget."""
        dim = max(self.store.dim, 1)
        per_query = 4 * width * (dim + 8)  # the re-ranking gather, its distances and indices
        queries = int(max(1, min(4096, self.memory_budget // 2 // max(per_query, 1))))
        rows = int(max(width, min(len(self.rows), self.memory_budget // 2 // (4 * queries * 3))))
        return queries, max(rows, 1)

    def _candidates(self, q: torch.Tensor, q_sq: torch.Tensor, width: int, row_block: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``width`` smallest computed squared distances per query, ascending, and their local rows."""
        values, indices = [], []
        for lo in range(0, len(self.rows), row_block):
            block = self.matrix[lo : lo + row_block]
            d2 = torch.addmm(self.sq_norms[lo : lo + row_block][None, :], q, block.T, alpha=-2.0).add_(q_sq[:, None])
            top = torch.topk(d2, min(width, d2.shape[1]), dim=1, largest=False)
            values.append(top.values)
            indices.append(top.indices + lo)
        merged_d, merged_i = torch.cat(values, dim=1), torch.cat(indices, dim=1)
        keep = torch.topk(merged_d, min(width, merged_d.shape[1]), dim=1, largest=False)  # sorted: the last is the largest
        return keep.values, merged_i.gather(1, keep.indices)

    def _rerank(self, q: torch.Tensor, cand: torch.Tensor, own: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact distances of the candidates, computed directly as ``search.rerank`` does, the query's
        own image dropped, sorted by (distance, row): the first k, inf and -1 where there are fewer."""
        diff = self.matrix[cand].sub_(q[:, None, :])  # in place: the gather is the working set
        d = diff.square_().sum(dim=2).clamp(min=0).sqrt()
        d = torch.where(cand == own[:, None], torch.full_like(d, torch.inf), d)
        by_row = torch.sort(cand, dim=1).indices  # local order is row order: sort by row, then stably by distance
        d, cand = d.gather(1, by_row), cand.gather(1, by_row)
        order = torch.sort(d, dim=1, stable=True).indices[:, :k]
        d, cand = d.gather(1, order), cand.gather(1, order)
        if d.shape[1] < k:
            pad = k - d.shape[1]
            d = torch.cat([d, torch.full((len(q), pad), torch.inf, device=self.device)], dim=1)
            cand = torch.cat([cand, torch.full((len(q), pad), -1, dtype=torch.int64, device=self.device)], dim=1)
        return d, torch.where(torch.isfinite(d), cand, -1)

    def _search(self, q: torch.Tensor, own: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact (distances, local rows) of one chunk of queries, widening where not proven."""
        q_sq = (q * q).sum(dim=1)
        bound = self._bound(q_sq)
        slack = 1 + 4 * (self.store.dim + 2) * _U  # rounding of the direct distance and its square root
        width = min(len(self.rows), k + 1 + _MARGIN)
        out_d = torch.empty((len(q), k), dtype=torch.float32, device=self.device)
        out_i = torch.empty((len(q), k), dtype=torch.int64, device=self.device)
        todo = torch.arange(len(q), device=self.device)
        while len(todo):
            step, row_block = self._chunks(width)
            unproven = []
            for lo in range(0, len(todo), step):
                part = todo[lo : lo + step]
                approx, cand = self._candidates(q[part], q_sq[part], width, row_block)
                d, local = self._rerank(q[part], cand, own[part], k)
                out_d[part], out_i[part] = d, local
                if width < len(self.rows):
                    # Every row outside the candidates is at squared distance >= largest computed - bound.
                    proven = (d[:, k - 1].double() ** 2 * slack).float() < approx[:, -1] - bound[part]
                    unproven.append(part[~proven])
            todo = torch.cat(unproven) if unproven else todo[:0]
            if len(todo):
                log.debug("%d queries with near-ties at the edge of %d candidates: searched again wider", len(todo), width)
            width = min(len(self.rows), 2 * width)
        return out_d, out_i

    def knn(
        self, q: np.ndarray, k: int, image_ids: Iterable[str] | None = None, *, progress: bool = False, desc: str = "knn"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted exact distances (n, k) float32 and row positions (n, k) int64 of checked queries
        (with ``progress``, a bar labelled ``desc`` counts the queries searched)."""
        codes = torch.from_numpy(self.query_codes(image_ids, len(q))).to(self.device)
        out_d = np.full((len(q), k), np.inf, dtype=np.float32)
        out_r = np.full((len(q), k), -1, dtype=np.int64)
        if len(self.rows) == 0 or len(q) == 0:
            return out_d, out_r
        own = torch.where(codes >= 0, self._local_of_code[codes.clamp(min=0)], -2)  # -2: no row of its own
        step, _ = self._chunks(min(len(self.rows), k + 1 + _MARGIN))
        with torch.inference_mode(), tqdm(total=len(q), desc=desc, unit="img", disable=not progress) as bar:
            for lo in range(0, len(q), step):
                hi = min(len(q), lo + step)
                qc = torch.from_numpy(np.ascontiguousarray(q[lo:hi], dtype=np.float32)).to(self.device, non_blocking=True)
                d, local = self._search(qc, own[lo:hi], k)
                rows = torch.where(local >= 0, self.rows[local.clamp(min=0)], -1)
                out_d[lo:hi] = d.cpu().numpy()
                out_r[lo:hi] = rows.cpu().numpy()
                bar.update(hi - lo)
        return out_d, out_r
