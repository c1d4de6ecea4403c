"""The embed stage: row-aligned shards, fixed boundaries, skipped inputs, resume after interruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _typicality_data import tiny_model, write_noise_images

from biasprobe.core.errors import InputError
from biasprobe.core.hashing import image_id
from biasprobe.core.manifest import SettingsMismatchError
from biasprobe.data.sources import ImageSource, open_source
from biasprobe.data.transforms import embed_view, normalise
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import UnitPlan, run_local
from biasprobe.index import shards as embedding
from biasprobe.index.build import build_index
from biasprobe.index.embed import embed_records, iter_embedded
from biasprobe.index.shards import embed_to_shards
from biasprobe.index.training_index import TrainingIndex
from biasprobe.models import ProbeModel


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime.create(threads=2)


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_noise_images(tmp_path_factory.mktemp("noise"), 45)
    (folder / "img_0007.png").write_bytes(b"broken")  # position 7: skipped with its reason
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_real_embeddings_match_a_direct_forward(lite0: ProbeModel, photos: ImageSource, runtime: Runtime) -> None:
    batches, emb = embed_records(photos.records, lite0, runtime, batch_size=4, show_progress=False)
    prep = lite0.preprocessing
    direct = []
    for record in photos.records:
        image, _ = record.load()
        x = normalise(torch.from_numpy(embed_view(image, input_size=prep.input_size, crop_pct=prep.crop_pct)), prep.mean, prep.std)
        with torch.inference_mode():
            direct.append(lite0(runtime.to_input(x[None]))[1][0].numpy())
    np.testing.assert_allclose(emb, np.stack(direct), atol=1e-4)
    assert [len(b.records) for b in batches] == [4, 4, 1]
    assert [i for b in batches for i in b.image_ids] == [image_id(r.path.read_bytes()) for r in photos.records]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_shards_are_row_aligned_with_fixed_boundaries(noise: Path, runtime: Runtime, tmp_path: Path) -> None:
    source = open_source(noise)
    model = runtime.prepare(tiny_model())
    shards = embed_to_shards(source.records, model, runtime, tmp_path, batch_size=4, shard_size=10, show_progress=False)
    assert shards.numbers == [0, 1, 2, 3, 4]
    ids = shards.ids()
    assert len(ids) == 44 and 7 not in set(ids["position"])
    for number in shards.numbers:  # shard i holds exactly the usable positions [10 i, 10 i + 10)
        part = pd.read_parquet(tmp_path / f"ids_{number:04d}.parquet")
        emb = np.load(tmp_path / f"emb_{number:04d}.npy")
        assert emb.shape == (len(part), 8) and emb.dtype == np.float32
        assert part["position"].between(10 * number, 10 * number + 9).all()
    expected = [image_id(source.records[p].path.read_bytes()) for p in ids["position"]]
    assert list(ids["image_id"]) == expected
    assert list(ids["path"]) == [source.records[p].relative for p in ids["position"]]
    assert list(shards.skipped()["path"]) == ["img_0007.png"]
    assert "cannot decode" in shards.skipped()["reason"][0]
    assert [s.path for s in source.skipped] == ["notes.txt"]
    # the same vectors as embedding in memory with the same batch boundaries
    batches = list(iter_embedded(source.records, model, runtime, batch_size=4, boundaries=10))
    for b in batches:
        assert len({p // 10 for p in b.positions}) <= 1  # no batch crosses a shard boundary
    stacked = np.concatenate([b.embeddings for b in batches if b.records])
    np.testing.assert_array_equal(stacked, np.concatenate([np.load(p) for p in shards.emb_paths()]))


def test_interrupted_embed_resumes_from_finished_shards(noise: Path, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = open_source(noise)
    model = runtime.prepare(tiny_model())
    full = embed_to_shards(source.records, model, runtime, tmp_path / "full", batch_size=4, shard_size=10, show_progress=False)
    real_write = embedding._write_shard
    calls: list[int] = []

    def crash_on_third(folder: Path, number: int, batches: list) -> None:
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(number)
        real_write(folder, number, batches)

    monkeypatch.setattr(embedding, "_write_shard", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        embed_to_shards(source.records, model, runtime, tmp_path / "part", batch_size=4, shard_size=10, show_progress=False)
    finished = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "part").glob("*_000[01].*")}
    assert len(finished) == 6 and not (tmp_path / "part" / "ids_0002.parquet").exists()
    monkeypatch.setattr(embedding, "_write_shard", real_write)
    written: list[int] = []
    monkeypatch.setattr(embedding, "_write_shard", lambda f, n, b: (written.append(n), real_write(f, n, b)))
    resumed = embed_to_shards(source.records, model, runtime, tmp_path / "part", batch_size=4, shard_size=10, show_progress=False)
    assert written == [2, 3, 4]  # only the unfinished shards were embedded again
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "part").glob("*_000[01].*")} == finished
    for a, b in zip(full.emb_paths(), resumed.emb_paths(), strict=True):
        np.testing.assert_array_equal(np.load(a), np.load(b))  # bit-identical to an uninterrupted run
    pd.testing.assert_frame_equal(full.ids().drop(columns="file"), resumed.ids().drop(columns="file"))
    with pytest.raises(SettingsMismatchError, match="holds embedding shards with different batch_size; use the same"):
        embed_to_shards(source.records, model, runtime, tmp_path / "part", batch_size=8, shard_size=10, show_progress=False)


def test_interrupted_index_build_resumes(noise: Path, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = open_source(noise)
    model = tiny_model()
    kwargs = {"runtime": runtime, "batch_size": 4, "shard_size": 10, "show_progress": False}
    reference = build_index(source, model, tmp_path / "full", **kwargs)
    real_write = embedding._write_shard
    state = {"n": 0}

    def crash(folder: Path, number: int, batches: list) -> None:
        state["n"] += 1
        if state["n"] == 4:
            raise KeyboardInterrupt
        real_write(folder, number, batches)

    monkeypatch.setattr(embedding, "_write_shard", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(source, model, tmp_path / "idx", **kwargs)
    with pytest.raises(InputError, match=r"meta.json is missing.*unfinished build"):
        TrainingIndex.open(tmp_path / "idx")
    monkeypatch.setattr(embedding, "_write_shard", real_write)
    with pytest.raises(SettingsMismatchError, match="holds an unfinished build with different batch_size; resume with"):
        build_index(source, model, tmp_path / "idx", **{**kwargs, "batch_size": 5})
    resumed = build_index(source, model, tmp_path / "idx", **kwargs)
    np.testing.assert_array_equal(resumed.reference, reference.reference)
    np.testing.assert_array_equal(resumed.ids, reference.ids)
    assert resumed.meta.skipped == 2  # the broken image and the text file, listed
    skipped = pd.read_parquet(tmp_path / "idx" / "skipped.parquet")
    assert sorted(skipped["path"]) == ["img_0007.png", "notes.txt"]
    with pytest.raises(InputError, match="already holds a built index"):
        build_index(source, model, tmp_path / "idx", **kwargs)


def test_any_subset_of_finished_shards_is_kept(noise: Path, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards are units of work: run some (not consecutive), then the rest; each one once, same bytes."""
    source = open_source(noise)
    model = runtime.prepare(tiny_model())
    full = embed_to_shards(source.records, model, runtime, tmp_path / "full", batch_size=4, shard_size=10, show_progress=False)
    folder = tmp_path / "part"
    folder.mkdir()
    plan = UnitPlan(folder, len(source.records), 10)
    work = embedding.EmbedShards(source.records, model, runtime, folder, batch_size=4, shard_size=10, show_progress=False)
    assert run_local(work, plan, units=[plan.units[1], plan.units[3], plan.units[4]]) == [plan.units[1], plan.units[3], plan.units[4]]
    assert [u.number for u in plan.finished()] == [1, 3, 4]
    written: list[int] = []
    real_write = embedding._write_shard
    monkeypatch.setattr(embedding, "_write_shard", lambda f, n, b: (written.append(n), real_write(f, n, b)))
    resumed = embed_to_shards(source.records, model, runtime, folder, batch_size=4, shard_size=10, show_progress=False)
    assert written == [0, 2]
    for a, b in zip(full.emb_paths(), resumed.emb_paths(), strict=True):
        assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(full.ids(), resumed.ids())
    pd.testing.assert_frame_equal(full.skipped(), resumed.skipped())
