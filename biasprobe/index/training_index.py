"""A built training index and the typicality figures of docs/protocols.md section 4.

``TrainingIndex.open(folder, device=...)`` loads what ``biasprobe index build`` wrote; it is
the only way to make one, so a ``TrainingIndex`` is always complete. Then, for query embeddings
(L2-normalised, from the same model and preprocessing: ``check_model``):

- ``knn``: the k nearest training rows by exact square-rooted L2 distance, leaving out every
  training row whose image id is the query's: without a device (the CPU) ``Neighbours``
  (candidates from FAISS, re-ranked from the stored vectors); with one (``search_device``
  gives CUDA) ``TorchNeighbours`` on it, the same neighbours from the stored vectors alone;
- ``knn_dist``: the mean of those k distances;
- ``atypicality``: the fraction of reference training images whose leave-one-out
  ``knn_dist`` at the same k is <= the given one (``reference``: sorted distances to the
  nearest ``K_MAX`` = 50 of every training image, or of a seeded 50k sample above 100k images);
- ``in_train``: whether an image id is in the training set.

Folder layout: ``meta.json`` (``IndexMeta``, written last), ``index.faiss``, ``ids.parquet``,
``shards/`` (``emb_XXXX.npy`` row-aligned with ``ids.parquet``), ``reference.npy`` (m, k_ref)
and ``reference_rows.npy`` (m,), and with boxes ``boxes.parquet`` (training box features).
``meta.json`` records every other file's size and SHA-256; each file is checked before it is
used (``files.IndexFiles``), so a damaged, truncated or swapped file is refused, never trusted.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from biasprobe.core.errors import BiasprobeError, IndexMismatchError, InputError
from biasprobe.core.io import parse_table
from biasprobe.core.records import FormatError
from biasprobe.core.schemas import BOX_FEATURES
from biasprobe.core.versions import library_versions
from biasprobe.index.faiss_build import read_index
from biasprobe.index.files import IndexFiles
from biasprobe.index.meta import REBUILD, IndexMeta, ModelSignature, ReferenceInfo
from biasprobe.index.neighbours import ById, Neighbours
from biasprobe.index.pose import PoseDensity
from biasprobe.index.reference import K_MAX, leave_one_out_reference
from biasprobe.index.search import Searcher
from biasprobe.index.store import VectorStore
from biasprobe.index.torch_knn import TorchNeighbours
from biasprobe.models import ProbeModel

__all__ = ["TrainingIndex", "search_device"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_LAYOUT = ("meta.json", "index.faiss", "ids.parquet", "reference.npy", "reference_rows.npy")


ATYPICALITY_TIE = 1e-6
"""Relative tolerance of atypicality's ``<=`` (docs/protocols.md section 4.5): float32 distances
computed by another search path (the torch search on a GPU, FAISS on the CPU) or in other
batches differ by about 1e-7 relative, and a training image must still meet its own reference
value."""


def search_device(device: torch.device) -> torch.device | None:
    """Where a runtime on ``device`` searches an index: the torch search on a CUDA device, FAISS
    (``None``) on the CPU."""
    return device if device.type == "cuda" else None


def _reopen(folder: Path, on_gpu: bool) -> TrainingIndex:
    """Open a pickled index again: on this process's GPU when it was searched on a GPU and
    this process has one, else with FAISS on the CPU."""
    device = torch.device("cuda") if on_gpu and torch.cuda.is_available() else None
    return TrainingIndex.open(folder, device=device)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def _parse(folder: Path, name: str, read: Callable[[], T], *, library: tuple[str, IndexMeta] | None = None) -> T:
    """``read()``, or one line naming the file when it is intact (its digest matched) yet cannot be
    parsed here, with the library versions when they differ from the build's."""
    try:
        return read()
    except (BiasprobeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # numpy, pyarrow and FAISS raise many types for a file they cannot parse
        versions = ""
        if library is not None:
            lib, meta = library
            built, here = meta.versions.get(lib), library_versions().get(lib)
            if built != here:
                versions = f"; it was written by {lib} {built} and this is {lib} {here}"
        raise InputError(
            f"index {folder}: {name} is as it was written but cannot be read here ({type(exc).__name__}: "
            f"{_first_line(exc)}){versions}; {REBUILD}"
        ) from exc


class TrainingIndex:
    """A training set's embeddings, FAISS index, ids and leave-one-out reference (made by ``open``)."""

    def __init__(
        self,
        folder: Path,
        meta: IndexMeta,
        table: pd.DataFrame,
        neighbours: ById,
        reference: np.ndarray,
        reference_rows: np.ndarray,
        pose: PoseDensity | None,
        files: IndexFiles | None = None,
    ) -> None:
        self.folder = folder
        self.meta = meta
        self.table = table
        self.neighbours = neighbours
        self.reference = reference
        self.reference_rows = reference_rows
        self.pose = pose
        self.files = files if files is not None else IndexFiles(folder, meta.files)
        self._ref_sorted: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- loading
    @classmethod
    def open(cls, path: str | Path, *, device: torch.device | str | None = None) -> TrainingIndex:
        """Open an index folder written by ``biasprobe index build``.

        ``device``: run the neighbour search in torch there (the stored vectors on it; the FAISS
        index is then not read); ``None``: FAISS on the CPU. Every file is checked against the size and SHA-256 that ``meta.json`` recorded before it
        is used (``files.IndexFiles``); a file that differs is refused, naming it.
        """
        folder = Path(path)
        if not (folder / "meta.json").is_file():
            hint = " (an unfinished build: re-run 'biasprobe index build' to resume it)" if folder.is_dir() else ""
            raise InputError(f"no index at {folder}: meta.json is missing{hint}; build one with 'biasprobe index build'")
        missing = [name for name in _LAYOUT if not (folder / name).is_file()]
        if missing:
            raise InputError(f"index {folder} is incomplete (missing {', '.join(missing)}); {REBUILD}")
        try:
            meta = IndexMeta.read(folder / "meta.json")
        except FormatError:
            raise
        except InputError as exc:
            raise InputError(f"index {folder} is unreadable: {exc}; {REBUILD}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"index {folder} is unreadable: meta.json is damaged ({type(exc).__name__}: "
                             f"{_first_line(exc)}); {REBUILD}") from exc
        files = IndexFiles(folder, meta.files)
        files.check_sizes()
        table = _parse(folder, "ids.parquet", lambda: parse_table(files.read("ids.parquet"), source=str(folder / "ids.parquet")))
        reference = _parse(folder, "reference.npy", lambda: np.load(io.BytesIO(files.read("reference.npy"))))
        reference_rows = _parse(folder, "reference_rows.npy", lambda: np.load(io.BytesIO(files.read("reference_rows.npy"))))
        store = VectorStore([folder / "shards" / name for name in meta.shards], check=files.verify)
        ids = table["image_id"].to_numpy(dtype="U16")
        neighbours: ById
        if device is None:
            files.verify(folder / "index.faiss")  # before FAISS parses it
            faiss_index = _parse(folder, "index.faiss", lambda: read_index(folder / "index.faiss"), library=("faiss", meta))
            searcher = Searcher(faiss_index, meta.search_params, store)
            if len(table) != store.count or store.count != searcher.ntotal:
                raise InputError(
                    f"index {folder} is inconsistent: {len(table)} ids, {store.count} stored vectors, "
                    f"{searcher.ntotal} indexed; {REBUILD}"
                )
            neighbours = Neighbours(ids, store, searcher, exact=meta.exact)
        else:
            if len(table) != store.count:
                raise InputError(f"index {folder} is inconsistent: {len(table)} ids, {store.count} stored vectors; {REBUILD}")
            neighbours = TorchNeighbours(ids, store, device)
        pose = None
        if meta.boxes is not None and (folder / "boxes.parquet").is_file():
            boxes = parse_table(files.read("boxes.parquet"), source=str(folder / "boxes.parquet"))
            pose = PoseDensity.fit(boxes[list(BOX_FEATURES)].to_numpy(), bandwidth=meta.boxes.bandwidth)
        return cls(folder, meta, table, neighbours, reference, reference_rows, pose, files)

    def __reduce__(self) -> tuple[Callable[[Path, bool], TrainingIndex], tuple[Path, bool]]:
        """Pickled as its folder: unpickling opens the index again (its files checked), so a
        remote worker loads it from the shared folder rather than receiving its arrays. An
        index searched on a GPU is searched on the GPU of the worker that unpickles it, when it
        has one (``_reopen``)."""
        on_gpu = isinstance(self.neighbours, TorchNeighbours) and self.neighbours.device.type == "cuda"
        return (_reopen, (self.folder.resolve(), on_gpu))

    # ---------------------------------------------------------------- properties
    @property
    def store(self) -> VectorStore:
        """The stored embeddings, row-aligned with ``table``."""
        return self.neighbours.store

    @property
    def count(self) -> int:
        """Number of training rows (duplicate files are rows sharing one id)."""
        return self.neighbours.count

    @property
    def unique_count(self) -> int:
        """Number of distinct training images."""
        return self.neighbours.unique_count

    @property
    def ids(self) -> np.ndarray:
        """Image id of every training row."""
        return self.neighbours.ids

    @property
    def paths(self) -> np.ndarray:
        """Absolute file path of every training row (as read at build time)."""
        return self.table["file"].to_numpy(dtype=object)

    @property
    def k_max(self) -> int:
        """The largest k the stored reference supports: min(K_MAX, distinct images - 1)."""
        return int(self.reference.shape[1])

    # ---------------------------------------------------------------- checks
    def check_model(self, model: ProbeModel) -> None:
        """Refuse a model whose name, weights, layer or preprocessing differ from the index's."""
        differs = self.meta.signature.differences(ModelSignature.of(model))
        if differs:
            named = "; ".join(f"{key}: index {built!r} vs model {now!r}" for key, built, now in differs)
            raise IndexMismatchError(
                f"index {self.folder} was built with a different model or preprocessing ({named}); "
                f"it was built by {self.meta.built_by}: use that model and weights, or build an index for this one"
            )

    def check_k(self, k: int) -> int:
        """``k`` itself, or a one-line error when the index cannot serve it (1..k_max)."""
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= self.k_max:
            raise InputError(
                f"k must be between 1 and {self.k_max} (min of K_MAX={K_MAX} and the {self.unique_count} "
                f"distinct training images minus one), got {k}"
            )
        return int(k)

    # ---------------------------------------------------------------- queries
    def knn(self, embeddings: np.ndarray, *, k: int, image_ids: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sorted exact distances (n, k) float32 and training row positions (n, k) int64."""
        q = self.neighbours.queries(embeddings)
        return self.neighbours.knn(q, self.check_k(k), image_ids)

    def knn_dist(self, embeddings: np.ndarray, *, k: int = 10, image_ids: Iterable[str] | None = None) -> np.ndarray:
        """Mean distance to the k nearest training images (leave-one-out by id), float64 (n,)."""
        d, _ = self.knn(embeddings, k=k, image_ids=image_ids)
        return d.astype(np.float64).mean(axis=1)

    def reference_knn_dist(self, *, k: int = 10) -> np.ndarray:
        """Leave-one-out knn_dist of every reference training image at this k, sorted."""
        k = self.check_k(k)
        if k not in self._ref_sorted:
            self._ref_sorted[k] = np.sort(self.reference[:, :k].astype(np.float64).mean(axis=1))
        return self._ref_sorted[k]

    def atypicality(self, knn_dist: np.ndarray, *, k: int = 10) -> np.ndarray:
        """Fraction of reference training images whose leave-one-out knn_dist (same k) is <= each
        value, reference values within ``ATYPICALITY_TIE`` (relative) above it counting as equal."""
        ref = self.reference_knn_dist(k=k)
        values = np.asarray(knn_dist, dtype=np.float64)
        return np.searchsorted(ref, values * (1 + ATYPICALITY_TIE), side="right") / len(ref)

    def in_train(self, image_ids: Iterable[str]) -> np.ndarray:
        """Whether each image id is one of the training images."""
        ids = list(image_ids)
        return self.neighbours.query_codes(ids, len(ids)) >= 0

    def leave_one_out_reference(self, *, seed: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray, ReferenceInfo]:
        """The reference computed again (as ``build_index`` did): distances, rows and how it was made."""
        return leave_one_out_reference(self.neighbours, seed=seed, progress=progress)

    def boxes_frame(self) -> pd.DataFrame | None:
        """Training box features (image_id, path, file, box_cx, box_cy, box_log_size), when boxes were given."""
        path = self.folder / "boxes.parquet"
        return parse_table(self.files.read("boxes.parquet"), source=str(path)) if path.is_file() else None
