"""A built training index and the typicality figures of docs/protocols.md section 4.

``TrainingIndex.open(folder)`` loads what ``biasprobe index build`` wrote. Then, for query
embeddings (L2-normalised, from the same model and preprocessing: ``check_model``):

- ``knn``: the k nearest training rows by exact square-rooted L2 distance (candidates from
  FAISS, re-ranked from the stored vectors), leaving out every training row whose image id
  is the query's;
- ``knn_dist``: the mean of those k distances;
- ``atypicality``: the fraction of reference training images whose leave-one-out
  ``knn_dist`` at the same k is <= the given one (reference: sorted distances to the nearest
  ``K_MAX`` = 50 of every training image, or of a seeded 50k sample above 100k images);
- ``in_train``: whether an image id is in the training set.

Folder layout: ``meta.json`` (written last), ``index.faiss``, ``ids.parquet``, ``shards/``
(``emb_XXXX.npy`` row-aligned with ``ids.parquet``), ``reference.npy`` (m, k_ref) and
``reference_rows.npy`` (m,), and with boxes ``boxes.parquet`` (training box features).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from biasprobe.core.errors import IndexMismatchError, InputError
from biasprobe.core.io import read_table
from biasprobe.index.faiss_ops import Searcher, VectorStore, exact_knn, read_index, rerank
from biasprobe.index.pose import FEATURE_COLUMNS, PoseDensity
from biasprobe.models import ProbeModel

__all__ = ["K_MAX", "REFERENCE_ALL_UP_TO", "REFERENCE_SAMPLE", "TrainingIndex", "model_signature"]

log = logging.getLogger(__name__)

K_MAX = 50
REFERENCE_ALL_UP_TO = 100_000
REFERENCE_SAMPLE = 50_000
_QUERY_CHUNK = 2048
_LAYOUT = ("meta.json", "index.faiss", "ids.parquet", "reference.npy", "reference_rows.npy")


def model_signature(model: ProbeModel) -> dict[str, object]:
    """What must agree between the index and a scoring model: name, weights, layer, preprocessing."""
    desc = model.describe()
    prep = dict(desc["preprocessing"])  # type: ignore[arg-type]
    return {
        "model": desc["model"],
        "weights_sha256": desc["weights_sha256"],
        "layer": desc["layer"],
        "preprocessing": {k: prep[k] for k in ("input_size", "mean", "std", "crop_pct")},
        "normalisation": "L2",
    }


def _flatten(sig: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in sig.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


class TrainingIndex:
    """A training set's embeddings, FAISS index, ids and leave-one-out reference."""

    def __init__(
        self,
        folder: Path,
        meta: dict[str, object],
        table: pd.DataFrame,
        store: VectorStore,
        searcher: Searcher,
        *,
        reference: np.ndarray | None = None,
        reference_rows: np.ndarray | None = None,
        pose: PoseDensity | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.meta = meta
        self.table = table
        self.store = store
        self.searcher = searcher
        self.reference = reference
        self.reference_rows = reference_rows
        self.pose = pose
        if len(table) != store.count or store.count != searcher.ntotal:
            raise InputError(
                f"index {folder} is inconsistent: {len(table)} ids, {store.count} stored vectors, "
                f"{searcher.ntotal} indexed; rebuild it with 'biasprobe index build'"
            )
        self._ids = table["image_id"].to_numpy(dtype="U16")
        self._unique, self._codes = np.unique(self._ids, return_inverse=True)
        # Identical files are one image: only the first row of each id can be a neighbour.
        self._canonical = np.zeros(len(self._codes), bool)
        self._canonical[np.unique(self._codes, return_index=True)[1]] = True
        self._max_copies = int(np.bincount(self._codes).max(initial=1)) if len(self._codes) else 1
        self._exact = str(meta.get("factory", "Flat")) == "Flat"
        self._ref_sorted: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- loading
    @classmethod
    def open(cls, path: str | Path) -> TrainingIndex:
        """Open an index folder written by ``biasprobe index build``."""
        folder = Path(path)
        if not (folder / "meta.json").is_file():
            hint = " (an unfinished build: re-run 'biasprobe index build' to resume it)" if folder.is_dir() else ""
            raise InputError(f"no index at {folder}: meta.json is missing{hint}; build one with 'biasprobe index build'")
        missing = [name for name in _LAYOUT if not (folder / name).is_file()]
        if missing:
            raise InputError(f"index {folder} is incomplete (missing {', '.join(missing)}); rebuild it with 'biasprobe index build'")
        try:
            meta = json.loads((folder / "meta.json").read_text())
            table = read_table(folder / "ids.parquet")
            shards = [folder / "shards" / name for name in meta["shards"]]  # type: ignore[union-attr]
            store = VectorStore(shards)
            searcher = Searcher(read_index(folder / "index.faiss"), str(meta.get("search_params", "")), store)
            reference = np.load(folder / "reference.npy")
            reference_rows = np.load(folder / "reference_rows.npy")
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            raise InputError(f"index {folder} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); rebuild it with 'biasprobe index build'") from exc
        pose = None
        if meta.get("boxes") and (folder / "boxes.parquet").is_file():
            boxes = read_table(folder / "boxes.parquet")
            pose = PoseDensity.fit(boxes[list(FEATURE_COLUMNS)].to_numpy(), bandwidth=float(meta["boxes"]["bandwidth"]))  # type: ignore[index]
        return cls(folder, meta, table, store, searcher, reference=reference, reference_rows=reference_rows, pose=pose)

    # ---------------------------------------------------------------- properties
    @property
    def count(self) -> int:
        """Number of training rows (duplicate files are rows sharing one id)."""
        return int(self.store.count)

    @property
    def unique_count(self) -> int:
        """Number of distinct training images."""
        return len(self._unique)

    @property
    def ids(self) -> np.ndarray:
        """Image id of every training row."""
        return self._ids

    @property
    def paths(self) -> np.ndarray:
        """Absolute file path of every training row (as read at build time)."""
        return self.table["file"].to_numpy(dtype=object)

    @property
    def k_max(self) -> int:
        """The largest k the stored reference supports: min(K_MAX, distinct images - 1)."""
        if self.reference is None:
            return min(K_MAX, self.unique_count - 1)
        return int(self.reference.shape[1])

    # ---------------------------------------------------------------- checks
    def check_model(self, model: ProbeModel) -> None:
        """Refuse a model whose name, weights, layer or preprocessing differ from the index's."""
        built = _flatten(dict(self.meta.get("signature", {})))  # type: ignore[arg-type]
        now = _flatten(model_signature(model))
        diffs = [f"{key}: index {built.get(key)!r} vs model {now[key]!r}" for key in now if built.get(key) != now[key]]
        if diffs:
            raise IndexMismatchError(
                f"index {self.folder} was built with a different model or preprocessing ({'; '.join(diffs)}); "
                "score with the index's model or build an index for this one"
            )

    def check_k(self, k: int) -> int:
        """``k`` itself, or a one-line error when the index cannot serve it (1..k_max)."""
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= self.k_max:
            raise InputError(
                f"k must be between 1 and {self.k_max} (min of K_MAX={K_MAX} and the {self.unique_count} "
                f"distinct training images minus one), got {k}"
            )
        return int(k)

    def _queries(self, embeddings: np.ndarray) -> np.ndarray:
        q = np.asarray(embeddings, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.store.dim:
            raise InputError(f"expected embeddings of shape (n, {self.store.dim}), got {q.shape}")
        return np.ascontiguousarray(q)

    def _query_codes(self, image_ids: object, n: int) -> np.ndarray:
        """Per query: the code of its id among the training ids, or -1."""
        if image_ids is None:
            return np.full(n, -1, dtype=np.int64)
        ids = np.asarray(list(image_ids), dtype="U16")  # type: ignore[call-overload]
        if ids.shape != (n,):
            raise InputError(f"expected {n} image ids, one per embedding, got {ids.shape[0]}")
        pos = np.clip(np.searchsorted(self._unique, ids), 0, max(len(self._unique) - 1, 0))
        found = self._unique[pos] == ids if len(self._unique) else np.zeros(n, bool)
        return np.where(found, pos, -1).astype(np.int64)

    # ---------------------------------------------------------------- queries
    def knn(self, embeddings: np.ndarray, *, k: int, image_ids: object = None) -> tuple[np.ndarray, np.ndarray]:
        """Sorted exact distances (n, k) float32 and training row positions (n, k) int64."""
        return self._knn(self._queries(embeddings), self.check_k(k), image_ids)

    def _knn(self, q: np.ndarray, k: int, image_ids: object, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        codes = self._query_codes(image_ids, len(q))
        multiplicity = np.bincount(self._codes, minlength=len(self._unique))
        excluded_n = np.where(codes >= 0, multiplicity[np.maximum(codes, 0)], 0)
        margin = 0 if self._exact else max(k, 10)
        out_d = np.empty((len(q), k), np.float32)
        out_r = np.empty((len(q), k), np.int64)
        for lo in tqdm(range(0, len(q), _QUERY_CHUNK), desc="knn", unit="chunk", disable=not progress):
            hi = min(len(q), lo + _QUERY_CHUNK)
            qc, cc = q[lo:hi], codes[lo:hi]
            width = k * self._max_copies + int(excluded_n[lo:hi].max(initial=0)) + margin
            d, r = self._search_rerank(qc, cc, width, k)
            out_d[lo:hi], out_r[lo:hi] = d, r
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
        excluded = ((self._codes[rows] == codes[:, None]) & (codes[:, None] >= 0)) | ~self._canonical[rows]
        return rerank(self.store, q, cand, k=k, excluded=excluded)

    def knn_dist(self, embeddings: np.ndarray, *, k: int = 10, image_ids: object = None) -> np.ndarray:
        """Mean distance to the k nearest training images (leave-one-out by id), float64 (n,)."""
        d, _ = self.knn(embeddings, k=k, image_ids=image_ids)
        return d.astype(np.float64).mean(axis=1)

    def reference_knn_dist(self, *, k: int = 10) -> np.ndarray:
        """Leave-one-out knn_dist of every reference training image at this k, sorted."""
        k = self.check_k(k)
        if self.reference is None:
            raise InputError(f"index {self.folder} has no leave-one-out reference; rebuild it")
        if k not in self._ref_sorted:
            self._ref_sorted[k] = np.sort(self.reference[:, :k].astype(np.float64).mean(axis=1))
        return self._ref_sorted[k]

    def atypicality(self, knn_dist: np.ndarray, *, k: int = 10) -> np.ndarray:
        """Fraction of reference training images whose leave-one-out knn_dist (same k) is <= each value."""
        ref = self.reference_knn_dist(k=k)
        values = np.asarray(knn_dist, dtype=np.float64)
        return np.searchsorted(ref, values, side="right") / len(ref)

    def in_train(self, image_ids: object) -> np.ndarray:
        """Whether each image id is one of the training images."""
        ids = np.asarray(list(image_ids), dtype="U16")  # type: ignore[call-overload]
        return self._query_codes(ids, len(ids)) >= 0

    def leave_one_out_reference(self, *, seed: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
        """Sorted leave-one-out distances to the nearest k_ref of each training image (one row per id)."""
        if self.unique_count < 2:
            raise InputError(f"an index needs at least 2 distinct training images, got {self.unique_count}")
        first_rows = np.unique(self._codes, return_index=True)[1].astype(np.int64)
        sampled = len(first_rows) > REFERENCE_ALL_UP_TO
        if sampled:
            rng = np.random.default_rng(seed)
            first_rows = np.sort(rng.choice(first_rows, size=REFERENCE_SAMPLE, replace=False))
        k_ref = min(K_MAX, self.unique_count - 1)
        d, _ = self._knn(self.store.take(first_rows), k_ref, self._ids[first_rows], progress=progress)
        info = {"k_max": K_MAX, "k_ref": k_ref, "images": len(first_rows), "sampled": sampled,
                "seed": seed if sampled else None, "distinct_images": self.unique_count}
        return d, first_rows, info

    def boxes_frame(self) -> pd.DataFrame | None:
        """Training box features (image_id, path, box_cx, box_cy, box_log_size), when boxes were given."""
        path = self.folder / "boxes.parquet"
        return read_table(path) if path.is_file() else None
