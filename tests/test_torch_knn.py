"""The torch neighbour search (index/torch_knn.py) against the FAISS path and brute force, on CPU tensors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _typicality_data import brute_force, stored_embeddings, tiny_model, write_noise_images

from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index.build import build_index
from biasprobe.index.faiss_build import build_faiss_index
from biasprobe.index.neighbours import Neighbours
from biasprobe.index.search import Searcher
from biasprobe.index.store import VectorStore
from biasprobe.index.torch_knn import TorchNeighbours
from biasprobe.index.training_index import TrainingIndex, search_device


def _store(tmp_path: Path, data: np.ndarray, shard: int) -> VectorStore:
    paths = []
    for i, lo in enumerate(range(0, len(data), shard)):
        paths.append(tmp_path / f"emb_{i:04d}.npy")
        np.save(paths[-1], data[lo : lo + shard])
    return VectorStore(paths)


def _clustered_with_duplicates(n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised clustered vectors; rows 100..109 are copies of row 99 (one image, one id),
    rows 200..204 share row 199's id with other vectors, rows 300 and 301 are the same vector
    under two ids (an exact tie, broken by row)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, dim)).astype(np.float32)
    data = centres[rng.integers(0, 12, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    data[100:110] = data[99]
    data[301] = data[300]
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = np.array([f"{i:016x}" for i in range(n)])
    ids[100:110] = ids[99]
    ids[200:205] = ids[199]
    return data, ids


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    data, ids = _clustered_with_duplicates(2500, 24)
    store = _store(tmp_path_factory.mktemp("knn"), data, 700)
    faiss_path = Neighbours(ids, store, Searcher(build_faiss_index(store, "Flat"), store=store), exact=True)
    rng = np.random.default_rng(1)
    stored_rows = np.r_[99, 105, 199, 202, 300, 301, rng.choice(2500, 60, replace=False)]
    fresh = data[rng.choice(2500, 20)] + 0.05 * rng.standard_normal((20, 24)).astype(np.float32)
    queries = np.vstack([data[stored_rows], fresh / np.linalg.norm(fresh, axis=1, keepdims=True)])
    query_ids = [*ids[stored_rows], *[f"new{i:013d}" for i in range(20)]]  # leave-one-out for the stored rows
    return {"data": data, "ids": ids, "store": store, "faiss": faiss_path, "queries": queries, "query_ids": query_ids}


@pytest.mark.parametrize("budget", [1 << 30, 1 << 16])  # one block of everything; many small query and row blocks
def test_same_neighbours_as_faiss_and_brute_force(clustered: dict, budget: int) -> None:
    torch_path = TorchNeighbours(clustered["ids"], clustered["store"], "cpu", memory_budget=budget)
    q, qids = clustered["queries"], clustered["query_ids"]
    truth = brute_force(q, qids, clustered["data"], list(clustered["ids"]))
    for k in (1, 10, 50):
        d, rows = torch_path.knn(q, k, qids)
        d_faiss, rows_faiss = clustered["faiss"].knn(q, k, qids)
        np.testing.assert_array_equal(rows, rows_faiss)
        np.testing.assert_allclose(d, d_faiss, atol=1e-5)
        np.testing.assert_allclose(d, truth[:, :k], atol=1e-5)
    d, rows = torch_path.knn(q[:6], 3, qids[:6])
    assert not np.isin(rows[0], np.arange(99, 110)).any()  # its own image, every copy, left out
    assert not np.isin(rows[2:4], [199, 200, 201, 202, 203, 204]).any()
    assert rows[4, 0] == 301 and rows[5, 0] == 300 and d[4, 0] == d[5, 0] == 0  # same vector, other id: distance 0
    assert not np.isin(torch_path.knn(q, 50)[1], np.r_[100:110, 200:205]).any()  # never a repeated row of an id


def test_near_ties_beyond_the_first_candidates_are_searched_wider(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3000, 32)).astype(np.float32)
    data[100:400] = data[7] + 1e-4 * rng.standard_normal((300, 32)).astype(np.float32)  # 301 near-ties
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = np.array([f"{i:016x}" for i in range(3000)])
    store = _store(tmp_path, data, 3000)
    torch_path = TorchNeighbours(ids, store, "cpu", memory_budget=1 << 18)
    queries = np.vstack([data[7:8], data[150:151], data[:20]])
    qids = [ids[7], ids[150], *ids[:20]]
    truth = brute_force(queries, qids, data, list(ids))
    with caplog.at_level(logging.DEBUG, logger="biasprobe.index.torch_knn"):
        d, rows = torch_path.knn(queries, 40, qids)
    assert "3 queries with near-ties at the edge of 292 candidates" in caplog.text  # row 7 (twice) and row 150 only
    np.testing.assert_allclose(d, truth[:, :40], atol=1e-6)
    exact = np.sqrt(((queries[:, None].astype(np.float64) - data[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np.take_along_axis(exact, rows, axis=1), d, atol=1e-6)


def test_fewer_rows_than_k_pad_like_faiss(tmp_path: Path) -> None:
    data, ids = _clustered_with_duplicates(400, 8)
    data, ids = data[95:112], ids[95:112]  # 17 rows, 7 images (rows 99..109 one id)
    store = _store(tmp_path, data, 10)
    faiss_path = Neighbours(ids, store, Searcher(build_faiss_index(store, "Flat"), store=store), exact=True)
    torch_path = TorchNeighbours(ids, store, "cpu")
    q, qids = data[[0, 4, 9]], list(ids[[0, 4, 9]])
    d, rows = torch_path.knn(q, 8, qids)
    d_faiss, rows_faiss = faiss_path.knn(q, 8, qids)
    np.testing.assert_array_equal(rows, rows_faiss)
    np.testing.assert_allclose(d, d_faiss, atol=1e-6)
    assert (rows[:, 6:] == -1).all() and np.isinf(d[:, 6:]).all()  # 6 other images only


def test_training_index_on_a_device_matches_the_faiss_path(tmp_path: Path) -> None:
    """An IVF index folder: the torch search (device "cpu" here, CUDA in use) gives the FAISS path's answers."""
    folder = write_noise_images(tmp_path / "imgs", 90)
    build_index(open_source(folder), tiny_model(), tmp_path / "ivf", runtime=Runtime.create(threads=1), factory="IVF4,Flat",
                batch_size=32, shard_size=40, show_progress=False, workers=0)  # fmt: skip
    on_cpu = TrainingIndex.open(tmp_path / "ivf")
    on_device = TrainingIndex.open(tmp_path / "ivf", device="cpu")
    assert isinstance(on_cpu.neighbours, Neighbours) and isinstance(on_device.neighbours, TorchNeighbours)
    stored, table = stored_embeddings(on_cpu.folder)
    ids = list(table["image_id"])
    for k in (1, 10, on_cpu.k_max):
        d, rows = on_device.knn(stored, k=k, image_ids=ids)
        d_faiss, rows_faiss = on_cpu.knn(stored, k=k, image_ids=ids)
        np.testing.assert_array_equal(rows, rows_faiss)
        np.testing.assert_allclose(d, d_faiss, atol=1e-5)
    np.testing.assert_allclose(on_device.knn_dist(stored, image_ids=ids), brute_force(stored, ids, stored, ids)[:, :10].mean(1),
                               atol=1e-5)  # fmt: skip
    reference, rows, _ = on_device.leave_one_out_reference(progress=False)
    np.testing.assert_allclose(reference, on_cpu.reference, atol=1e-5)
    np.testing.assert_array_equal(rows, on_cpu.reference_rows)


def test_search_device_is_cuda_only() -> None:
    import torch

    assert search_device(torch.device("cpu")) is None
    assert search_device(torch.device("cuda", 1)) == torch.device("cuda", 1)


def test_a_training_image_meets_its_own_reference_whatever_the_search_path() -> None:
    """Atypicality's <= holds within a float32 tie: a distance 1e-7 above a reference value (what
    another search path gives for the same image) still counts that reference (protocols 4.5)."""
    from biasprobe.index.training_index import ATYPICALITY_TIE, TrainingIndex

    ref = np.array([0.5, 1.0, 1.2, 1.3], dtype=np.float64)

    class _Index:
        def reference_knn_dist(self, *, k: int) -> np.ndarray:
            return ref

    values = np.array([1.2, 1.2 * (1 - 1e-7), 1.2 * (1 + 1e-7), 1.2 * (1 - 5 * ATYPICALITY_TIE)])
    got = TrainingIndex.atypicality(_Index(), values, k=10)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, [0.75, 0.75, 0.75, 0.5])
