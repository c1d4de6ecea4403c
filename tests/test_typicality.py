"""TrainingIndex against numpy brute force on real EfficientNet-Lite0 embeddings (docs/protocols.md 4)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _typicality_data import brute_force, stored_embeddings, tiny_model, write_photo_sets

from biasprobe.core.errors import IndexMismatchError, InputError
from biasprobe.core.hashing import image_id
from biasprobe.core.records import FormatError
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index import IndexMeta, ModelSignature, ScoreSummary
from biasprobe.index.build import build_index
from biasprobe.index.embed import embed_records
from biasprobe.index.faiss_build import build_faiss_index, choose_factory, default_search_params
from biasprobe.index.reference import K_MAX
from biasprobe.index.score import score_images
from biasprobe.index.search import Searcher, exact_knn, rerank
from biasprobe.index.store import VectorStore
from biasprobe.index.training_index import TrainingIndex
from biasprobe.models import ProbeModel


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, lite0: ProbeModel) -> dict[str, object]:
    root = tmp_path_factory.mktemp("typ")
    train, test = write_photo_sets(root)
    runtime = Runtime.create(threads=2)
    index = build_index(open_source(train), lite0, root / "index", runtime=runtime, batch_size=8, shard_size=8, show_progress=False)
    queries = open_source(test)
    batches, emb = embed_records(queries.records, lite0, runtime, batch_size=8, show_progress=False)
    qids = [i for b in batches for i in b.image_ids]
    qpaths = [r.relative for b in batches for r in b.records]
    return {"root": root, "train": train, "test": test, "index": index, "emb": emb, "qids": qids, "qpaths": qpaths, "runtime": runtime}


def test_index_layout_and_ids(built: dict) -> None:
    index: TrainingIndex = built["index"]
    train: Path = built["train"]
    assert index.count == 20 and index.unique_count == 18
    assert index.k_max == 17  # min(K_MAX, distinct images - 1)
    expected = {p.name: image_id(p.read_bytes()) for p in train.iterdir()}
    assert dict(zip(index.table["path"], index.ids, strict=True)) == expected
    assert index.ids[list(index.table["path"]).index("chelsea_copy.png")] == expected["chelsea.png"]
    assert all(Path(p).is_file() for p in index.paths)
    meta = json.loads((index.folder / "meta.json").read_text())
    assert meta["model"] == "efficientnet_lite0" and meta["dim"] == 1280 and meta["count"] == 20
    assert meta["factory"] == "Flat" and meta["k_max"] == K_MAX
    assert meta["reference"]["images"] == 18 and not meta["reference"]["sampled"]
    assert meta["preprocessing"]["crop_pct"] == 0.875 and meta["weights_sha256"]
    stored, _ = stored_embeddings(index.folder)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)


def test_knn_dist_matches_brute_force_for_every_k(built: dict) -> None:
    index: TrainingIndex = built["index"]
    emb, qids = built["emb"], built["qids"]
    stored, table = stored_embeddings(index.folder)
    bf = brute_force(emb, qids, stored, list(table["image_id"]))
    for k in (1, 3, 10, index.k_max):
        d, rows = index.knn(emb, k=k, image_ids=qids)
        assert d.dtype == np.float32 and rows.dtype == np.int64 and d.shape == (len(emb), k)
        np.testing.assert_allclose(d, bf[:, :k], atol=2e-6)
        assert np.all(np.diff(d, axis=1) >= 0)
        np.testing.assert_allclose(index.knn_dist(emb, k=k, image_ids=qids), bf[:, :k].mean(axis=1), atol=2e-6)
        # the rows are the ones at those distances
        recomputed = np.linalg.norm(stored[rows] - emb[:, None, :], axis=2)
        np.testing.assert_allclose(recomputed, d, atol=2e-6)


def test_leave_one_out_by_id_including_duplicate_files(built: dict) -> None:
    index: TrainingIndex = built["index"]
    stored, table = stored_embeddings(index.folder)
    ids = list(table["image_id"])
    chelsea_rows = [i for i, p in enumerate(table["path"]) if p in ("chelsea.png", "chelsea_copy.png")]
    assert ids[chelsea_rows[0]] == ids[chelsea_rows[1]]
    q = stored[chelsea_rows[:1]]
    d, rows = index.knn(q, k=5, image_ids=[ids[chelsea_rows[0]]])
    assert not set(rows[0]) & set(chelsea_rows) and d[0, 0] > 0.1  # neither copy is its own neighbour
    d_open, rows_open = index.knn(q, k=2)  # without ids: the image once (identical files are one image)
    assert rows_open[0, 0] == chelsea_rows[0] and d_open[0, 0] < 1e-6
    assert rows_open[0, 1] not in chelsea_rows and d_open[0, 1] > 0.1
    assert list(index.in_train([ids[chelsea_rows[0]], "0123456789abcdef"])) == [True, False]


def test_atypicality_from_reference_matches_brute_force(built: dict) -> None:
    index: TrainingIndex = built["index"]
    emb, qids = built["emb"], built["qids"]
    stored, table = stored_embeddings(index.folder)
    ids = np.asarray(table["image_id"])
    first = np.unique(ids, return_index=True)[1]
    ref_bf = brute_force(stored[first], list(ids[first]), stored, list(ids))[:, : index.k_max]
    np.testing.assert_allclose(np.sort(index.reference, axis=0), np.sort(ref_bf, axis=0), atol=2e-6)
    bf = brute_force(emb, qids, stored, list(ids))
    for k in range(1, index.k_max + 1):  # any k <= k_max from the stored reference
        ref_k = ref_bf[:, :k].mean(axis=1)
        knn = index.knn_dist(emb, k=k, image_ids=qids)
        expected = (ref_k[None, :] <= bf[:, :k].mean(axis=1)[:, None] + 1e-9).mean(axis=1)
        assert np.allclose(index.atypicality(knn, k=k), expected, atol=1 / 18 + 1e-9)
        # exact agreement away from ties
        margin = np.abs(ref_k[None, :] - knn[:, None]).min(axis=1) > 1e-5
        np.testing.assert_array_equal(index.atypicality(knn, k=k)[margin], expected[margin])
    # a training image scored against its own index lands on its own reference value
    own = index.knn_dist(stored[first], k=10, image_ids=ids[first])
    np.testing.assert_array_equal(np.sort(own), index.reference_knn_dist(k=10))
    assert index.atypicality(np.array([0.0, 10.0]), k=10).tolist() == [0.0, 1.0]


def test_score_images_table(built: dict, lite0: ProbeModel) -> None:
    index: TrainingIndex = built["index"]
    result = score_images(index, open_source(built["test"]), lite0, k=5, runtime=built["runtime"], batch_size=8, show_progress=False)
    frame = result.frame
    assert list(frame["path"]) == built["qpaths"] and "broken.jpg" not in set(frame["path"])
    assert list(result.skipped["path"]) == ["broken.jpg"] and "cannot decode" in result.skipped["reason"][0]
    np.testing.assert_allclose(frame["knn_dist"], index.knn_dist(built["emb"], k=5, image_ids=built["qids"]), atol=1e-6)
    assert frame.set_index("path").loc["astronaut_again.png", "in_train"]
    assert frame["in_train"].sum() == 1
    row = frame.iloc[0]
    assert len(row["neighbor_ids"]) == 5 and row["neighbor_dists"] == sorted(row["neighbor_dists"])
    assert np.isclose(np.mean(row["neighbor_dists"]), row["knn_dist"])
    assert all(Path(p).is_file() for p in row["neighbor_paths"])
    assert frame["atypicality"].between(0, 1).all()
    # a crop's nearest training image is its own photo (or its mirror image)
    crops = frame[frame["path"].str.endswith("_crop.png")]
    stems = [Path(p).stem.replace("_crop", "") for p in crops["path"]]
    firsts = [Path(n[0]).stem.replace("_mirror", "").replace("_copy", "") for n in crops["neighbor_paths"]]
    assert sum(a == b for a, b in zip(stems, firsts, strict=True)) >= 8
    summary = result.summary
    assert summary.in_train == 1 and summary.k == 5 and summary.skipped == 1 and summary.images == len(frame)
    assert summary.images_root == str(built["test"]) and summary.index.folder == str(index.folder)
    assert summary.index.signature == index.meta.signature and summary.index.reference == index.meta.reference
    result.write(built["root"] / "scores.parquet")
    stored = json.loads((built["root"] / "scores.summary.json").read_text())
    assert stored["format"] == "biasprobe.scores" and stored["images_root"] == str(built["test"])
    assert stored["index"]["model"] == "efficientnet_lite0" and stored["index"]["reference"]["k_ref"] == 17
    assert ScoreSummary.read(built["root"] / "scores.summary.json") == summary


def test_bad_k_and_shapes_refused(built: dict) -> None:
    index: TrainingIndex = built["index"]
    for k in (0, index.k_max + 1, K_MAX + 1):
        with pytest.raises(InputError, match=r"k must be between 1 and 17"):
            index.knn_dist(built["emb"], k=k)
    with pytest.raises(InputError, match=r"shape \(n, 1280\)"):
        index.knn(np.zeros((2, 8), np.float32), k=3)
    with pytest.raises(InputError, match="one per embedding"):
        index.knn(built["emb"], k=3, image_ids=["a"])


def test_model_mismatch_is_refused_with_what_differs(built: dict, lite0: ProbeModel) -> None:
    index: TrainingIndex = built["index"]
    index.check_model(lite0)
    with pytest.raises(IndexMismatchError, match=r"model: index 'efficientnet_lite0' vs model 'tiny'.*weights_sha256"):
        index.check_model(tiny_model())
    other = ProbeModel(lite0.net, name=lite0.name, preprocessing=replace(lite0.preprocessing, crop_pct=1.0),
                       class_names=lite0.class_names, weights_sha256=lite0.weights_sha256, weights_source="x")
    with pytest.raises(IndexMismatchError, match=r"preprocessing.crop_pct: index 0.875 vs model 1.0") as info:
        index.check_model(other)
    assert "model:" not in str(info.value).split("(", 1)[1]  # only what differs is named
    with pytest.raises(IndexMismatchError):
        score_images(index, open_source(built["test"]), other, show_progress=False)


def test_meta_is_a_typed_record(built: dict, lite0: ProbeModel, tmp_path: Path) -> None:
    index: TrainingIndex = built["index"]
    meta = IndexMeta.read(index.folder / "meta.json")
    assert meta == index.meta and IndexMeta.from_json(meta.to_json()) == meta
    assert meta.signature == ModelSignature.of(lite0) and meta.model == "efficientnet_lite0"
    assert meta.factory == "Flat" and meta.exact and meta.boxes is None and meta.shards == ("emb_0000.npy", "emb_0001.npy", "emb_0002.npy")
    assert meta.reference.k_ref == index.k_max == 17 and meta.distinct_images == 18 and meta.weights_source
    assert index.meta.count == 20 and index.meta.boxes is None
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(index.folder, copy)
    old = {k: v for k, v in meta.to_json().items() if k != "format_version"}
    (copy / "meta.json").write_text(json.dumps({**old, "format": 1}))
    with pytest.raises(FormatError, match=r"holds an index of format 1 version None; this biasprobe reads "
                                          r"'biasprobe.index' version 3: rebuild it with 'biasprobe index build'"):
        TrainingIndex.open(copy)


def test_open_missing_or_corrupt(built: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no index at .*meta.json is missing"):
        TrainingIndex.open(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(built["index"].folder, copy)
    (copy / "meta.json").write_text("{ not json")
    with pytest.raises(InputError, match="unreadable"):
        TrainingIndex.open(copy)
    (copy / "meta.json").write_text((built["index"].folder / "meta.json").read_text())
    (copy / "reference.npy").unlink()
    with pytest.raises(InputError, match=r"incomplete \(missing reference.npy\)"):
        TrainingIndex.open(copy)


def test_factory_choice() -> None:
    assert choose_factory(1000, 1280) == "Flat"
    assert choose_factory(100_000, 1280, memory_budget=1 << 34) == "Flat"
    assert choose_factory(1_000_000, 256, memory_budget=1 << 34) == "IVF8192,Flat"
    pq = choose_factory(1_000_000, 256, memory_budget=100 << 20)
    assert pq.startswith("IVF8192,PQ") and 1_000_000 * (int(pq.split("PQ")[1]) + 8) <= 100 << 20
    assert choose_factory(100_000, 1280, memory_budget=10 << 20).startswith("IVF")
    assert default_search_params("IVF4096,Flat") == "nprobe=32" and default_search_params("IVF64,PQ8") == "nprobe=8" and default_search_params("Flat") == ""


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim)).astype(np.float32)
    return centres[rng.integers(0, 20, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)


def test_approximate_index_rerank_and_fallback(tmp_path: Path) -> None:
    data = _clustered(3000, 16, 0)
    for i, lo in enumerate(range(0, 3000, 1000)):
        np.save(tmp_path / f"emb_{i:04d}.npy", data[lo : lo + 1000])
    store = VectorStore(sorted(tmp_path.glob("emb_*.npy")))
    assert store.count == 3000 and store.dim == 16
    np.testing.assert_array_equal(store.take(np.array([[5, 2999], [1000, 0]])), data[[[5, 2999], [1000, 0]]])
    queries = _clustered(50, 16, 1)
    exact = np.sqrt(((queries[:, None] - data[None]) ** 2).sum(-1))
    truth = np.sort(exact, axis=1)[:, :10]
    index = build_faiss_index(store, "IVF32,Flat", seed=0)
    searcher = Searcher(index, "nprobe=32")  # every list: exact
    d, rows = rerank(store, queries, searcher.search(queries, 10), k=10)
    np.testing.assert_allclose(d, truth, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.sqrt(((data[rows] - queries[:, None]) ** 2).sum(-1)), d, rtol=1e-5)
    pq = build_faiss_index(store, "IVF32,PQ8x4", seed=0)  # coarse codes, exact distances after re-ranking
    d_pq, r_pq = rerank(store, queries, Searcher(pq, "nprobe=32").search(queries, 100), k=10)
    np.testing.assert_allclose(np.take_along_axis(exact, r_pq, axis=1), d_pq, rtol=1e-5)
    true_rows = np.argsort(exact, axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(r_pq, true_rows, strict=True)])
    assert recall > 0.9
    np.testing.assert_array_equal(exact_knn(store, queries, 10), np.argsort(exact, axis=1, kind="stable")[:, :10])
    excluded = np.zeros((50, 10), bool)
    excluded[:, 0] = True
    cand = np.argsort(exact, axis=1)[:, :10]
    d_ex, r_ex = rerank(store, queries, cand, k=10, excluded=excluded)
    assert np.all(r_ex[:, -1] == -1) and np.all(np.isinf(d_ex[:, -1]))
    np.testing.assert_allclose(d_ex[:, :9], truth[:, 1:], rtol=1e-5)


def test_ivf_index_through_build(tmp_path: Path) -> None:
    """The approximate path end to end: a tiny model, an IVF factory, brute-force agreement."""
    from _typicality_data import write_noise_images

    folder = write_noise_images(tmp_path / "imgs", 120)
    model = tiny_model()
    runtime = Runtime.create(threads=2)
    index = build_index(open_source(folder), model, tmp_path / "ivf", runtime=runtime, factory="IVF4,Flat", batch_size=32,
                        shard_size=50, show_progress=False, workers=0)
    assert index.meta.factory == "IVF4,Flat" and index.meta.search_params == "nprobe=4"
    stored, table = stored_embeddings(index.folder)
    ids = list(table["image_id"])
    bf = brute_force(stored[:30], ids[:30], stored, ids)
    d, _ = index.knn(stored[:30], k=10, image_ids=ids[:30])
    np.testing.assert_allclose(d, bf[:, :10], atol=1e-5)


def test_bf16_screen_finds_the_exact_neighbours(tmp_path: Path) -> None:
    from biasprobe.index.search import bf16_supported

    rng = np.random.default_rng(3)
    data = rng.standard_normal((5000, 64)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    data[100:200] = data[7] + 1e-4 * rng.standard_normal((100, 64)).astype(np.float32)  # 101 near-ties
    np.save(tmp_path / "emb_0000.npy", data)
    store = VectorStore([tmp_path / "emb_0000.npy"])
    searcher = Searcher(build_faiss_index(store, "Flat"), store=store)
    assert (searcher.screen is not None) == bf16_supported()
    queries = np.vstack([data[:50] + 0.05 * rng.standard_normal((50, 64)).astype(np.float32), data[7:8]])
    exact = np.sqrt(((queries[:, None].astype(np.float64) - data[None]) ** 2).sum(-1))
    for k in (1, 10, 60):
        d, rows = rerank(store, queries, searcher.search(queries, k), k=k)
        np.testing.assert_array_equal(np.sort(rows, axis=1), np.sort(np.argsort(exact, axis=1)[:, :k], axis=1))
        np.testing.assert_allclose(d, np.sort(exact, axis=1)[:, :k], atol=1e-6)
    if searcher.screen is not None:
        _rows, overflow = searcher.screen.candidates(queries, 10)
        assert overflow.nonzero()[0].tolist() == [7, 50]  # the queries next to the near-ties went to fp32 search
