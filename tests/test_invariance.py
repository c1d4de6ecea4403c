"""The invariance stage end to end: tables of the contract, skipping, resume, CLI, real model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from biasprobe.cli import main
from biasprobe.core.errors import InputError
from biasprobe.core.io import companion
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.schemas import INVARIANCE_TABLE as IMAGE_COLUMNS
from biasprobe.core.schemas import VIEWS_TABLE as VIEW_COLUMNS
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.invariance import measure_invariance, parts_dir_for, run_invariance
from biasprobe.invariance import work as invariance_work
from biasprobe.invariance.protocols import ProtocolParams
from biasprobe.models.spec import ProbeModel

ALL = ["crop", "black", "inpaint", "scale", "circular", "zhang"]
PREP = Preprocessing(16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.875, 3)
PARAMS = ProtocolParams(max_shift=3, embed_size=10, input_size=16, pairs_per_image=2, run_seed=0)


def _tiny_model() -> ProbeModel:
    """A small CNN with a flatten head (not shift invariant), 5 classes."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, 5))
    return ProbeModel(net, name="tiny", preprocessing=PREP, class_names=list("abcde"), weights_sha256=None, weights_source="test")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for label in ("0", "1"):
        (root / label).mkdir()
        for i in range(3):
            size = (20 + 7 * i, 18 + 3 * i)[:: 1 if i % 2 else -1]
            arr = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(arr, "RGB").save(root / label / f"img{i}.png")
    (root / "1" / "broken.png").write_bytes(b"not a png at all")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8), "RGB").save(root / "0" / "tiny.png")
    return root


def _run(images, out, **kwargs):
    defaults = dict(protocols=ALL, params=PARAMS, runtime=Runtime.create(threads=2), batch_size=7,
                    chunk_images=3, progress=False)  # fmt: skip
    return run_invariance(_tiny_model(), open_source(images), out, **{**defaults, **kwargs})


def test_outputs_follow_the_table_contract(images, tmp_path):
    out = tmp_path / "inv.parquet"
    result = _run(images, out)
    for kind in ("views", "skipped"):
        assert companion(out, kind).is_file()
    assert not parts_dir_for(out).exists()
    table = pd.read_parquet(out)
    assert list(table.columns) == list(IMAGE_COLUMNS)
    assert len(table) == 6 * len(ALL)
    assert table["label"].dtype == "Int64" and table["correct0"].dtype == "boolean"
    assert table["image_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert set(table["path"]) == {f"{c}/img{i}.png" for c in "01" for i in range(3)}
    assert (table.loc[table.protocol != "zhang", "pairs"] == 3).all()
    assert (table.loc[table.protocol == "zhang", "pairs"] == 2).all()
    assert table["p_change"].between(0, 1).all() and table["model"].eq("tiny").all()
    assert table["top0_name"].isin(list("abcde")).all()
    views = pd.read_parquet(companion(out, "views"))
    assert list(views.columns) == list(VIEW_COLUMNS)
    assert len(views) == 6 * (5 * 4 + 4) and views["knn_dist"].isna().all()
    # flips agree with the per-view top-1 labels
    for (image_id, protocol), group in views.groupby(["image_id", "protocol"]):
        top = group.sort_values("t")["top1"].to_numpy()
        flips = (top[0::2] != top[1::2]).sum() if protocol == "zhang" else (top[1:] != top[:-1]).sum()
        row = table[(table.image_id == image_id) & (table.protocol == protocol)].iloc[0]
        assert row.flips == flips and row.top0 == top[0]
    scale = views[views.protocol == "scale"]
    assert sorted(set(scale["dx"])) == [10, 11, 12, 13]
    skipped = pd.read_parquet(companion(out, "skipped"))
    assert sorted(skipped["path"]) == ["0/tiny.png", "1/broken.png"]
    assert skipped.set_index("path").loc["0/tiny.png", "reason"].startswith("image is 4x4 pixels")
    summary = json.loads(companion(out, "summary").read_text())
    assert summary["skipped"] == 2 and summary["model"]["model"] == "tiny"
    assert summary["parameters"]["max_shift"] == 3 and summary["parameters"]["batch_size"] == 7
    crop = summary["protocols"]["crop"]
    rows = table[table.protocol == "crop"]
    assert crop["p_change"] == pytest.approx(rows.flips.sum() / rows.pairs.sum())
    assert crop["mac"] == pytest.approx((rows.mac_top1 * rows.pairs).sum() / rows.pairs.sum())
    assert crop["consistency"] == pytest.approx(1 - crop["p_change"])
    assert crop["p_change_ci"][0] <= crop["p_change"] <= crop["p_change_ci"][1]
    assert crop["accuracy"] == pytest.approx(rows.correct0.mean())
    pd.testing.assert_frame_equal(result.images, table)


def test_interrupted_run_resumes_to_identical_outputs(images, tmp_path, monkeypatch):
    whole = _run(images, tmp_path / "whole.parquet", workers=0)
    out = tmp_path / "resumed.parquet"
    real_write = invariance_work.write_part
    calls = []

    def crash_after_first(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(args[1])
        real_write(*args, **kwargs)

    monkeypatch.setattr(invariance_work, "write_part", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        _run(images, out, workers=0)
    assert (parts_dir_for(out) / "part_000000.parquet").is_file() and not out.exists()
    monkeypatch.setattr(invariance_work, "write_part", real_write)
    resumed = _run(images, out, workers=0)
    pd.testing.assert_frame_equal(resumed.images, whole.images)
    pd.testing.assert_frame_equal(resumed.views, whole.views)
    # (a decode error's reason names a Python object address, so compare the paths)
    assert sorted(resumed.skipped["path"]) == sorted(whole.skipped["path"])


def test_parts_from_other_settings_are_refused(images, tmp_path, monkeypatch):
    out = tmp_path / "x.parquet"
    monkeypatch.setattr(invariance_work, "write_part", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _run(images, out, workers=0)
    with pytest.raises(InputError, match="batch_size"):
        _run(images, out, workers=0, batch_size=5)


def test_batch_size_moves_probabilities_only_within_float_noise(images):
    model, source = _tiny_model(), open_source(images)
    kw = dict(protocols=["crop", "inpaint"], params=PARAMS, progress=False, workers=0, runtime=Runtime.create(threads=2))
    one = measure_invariance(model, source, batch_size=1, **kw).views
    many = measure_invariance(model, source, batch_size=64, **kw).views
    assert (one["top1"] == many["top1"]).all()
    np.testing.assert_allclose(one["p_k0"], many["p_k0"], atol=1e-5)


class _FakeIndex:
    """Stands in for typicality.TrainingIndex: knn_dist = first embedding coordinate."""

    def __init__(self) -> None:
        self.checked = False
        self.ids: list[str] = []

    def check_k(self, k):
        return k

    def check_model(self, model):
        self.checked = True

    def knn_dist(self, embeddings, *, k=10, image_ids=None):
        assert embeddings.dtype == np.float32 and k == 3
        self.ids += list(image_ids)
        return embeddings[:, 0].astype(np.float64)


def test_views_get_knn_dist_from_the_index(images):
    index = _FakeIndex()
    result = measure_invariance(_tiny_model(), open_source(images), protocols=["crop"], params=PARAMS, index=index,
                                k=3, progress=False, workers=0, runtime=Runtime.create(threads=2))  # fmt: skip
    assert index.checked and result.views["knn_dist"].notna().all()
    assert index.ids == list(result.views["image_id"])


def test_cli_rejects_a_canvas_too_small_before_any_work(tmp_path, capsys):
    code = main(["invariance", "--model", "efficientnet_lite0", "--images", "builtin:photos", "--protocol", "crop,black",
                 "--embed-size", "200", "--out", str(tmp_path / "x.parquet")])  # fmt: skip
    assert code == 1
    assert "200 + 32 > 224" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()


def test_cli_on_the_real_model_and_bundled_photos(tmp_path, capsys):
    out = tmp_path / "inv.parquet"
    code = main(["invariance", "--model", "efficientnet_lite0", "--images", "builtin:photos", "--limit", "2",
                 "--protocol", "crop,zhang", "--max-shift", "2", "--pairs-per-image", "1", "--batch-size", "8",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "P(top-1 change)" in printed and "crop" in printed
    table = pd.read_parquet(out)
    assert len(table) == 4 and list(table["path"].unique()) == ["astronaut.png", "chelsea.png"]
    chelsea = table[(table.path == "chelsea.png") & (table.protocol == "crop")].iloc[0]
    assert "cat" in chelsea.top0_name
    summary = json.loads(companion(out, "summary").read_text())
    assert summary["parameters"]["max_shift"] == 2 and summary["parameters"]["embed_size"] == 168
    assert summary["command"][:3] == ["invariance", "--model", "efficientnet_lite0"]
    assert len(pd.read_parquet(companion(out, "views"))) == 2 * (3 + 2)


def test_views_crossing_from_the_worker_equal_views_made_in_process(images):
    """crop alone travels as a strided view of one square; with zhang, as a concatenated block."""
    kw = dict(params=PARAMS, progress=False, batch_size=4, runtime=Runtime.create(threads=2))  # 4 views an image
    alone = measure_invariance(_tiny_model(), open_source(images), protocols=["crop"], workers=1, **kw).views
    mixed = measure_invariance(_tiny_model(), open_source(images), protocols=["crop", "zhang"], workers=0, **kw).views
    pd.testing.assert_frame_equal(alone, mixed[mixed.protocol == "crop"].reset_index(drop=True))


def test_any_subset_of_finished_units_resumes_to_identical_outputs(images, tmp_path, monkeypatch):
    """Units are independent: with units 0 and 2 finished and 1 missing, only 1 runs again."""
    whole = _run(images, tmp_path / "whole.parquet", workers=0)
    parts = tmp_path / "parts"
    defaults = dict(protocols=ALL, params=PARAMS, runtime=Runtime.create(threads=2), batch_size=7,
                    chunk_images=3, progress=False, workers=0)  # fmt: skip
    measure_invariance(_tiny_model(), open_source(images), parts_dir=parts, **defaults)
    assert sorted(p.name for p in (parts / "done").iterdir()) == ["000000.json", "000001.json", "000002.json"]
    (parts / "done" / "000001.json").unlink()  # unit 1 never finished
    (parts / "part_000001.parquet").unlink()
    real_write = invariance_work.write_part
    ran = []
    monkeypatch.setattr(invariance_work, "write_part", lambda folder, unit, part: (ran.append(unit), real_write(folder, unit, part)))
    resumed = measure_invariance(_tiny_model(), open_source(images), parts_dir=parts, **defaults)
    assert ran == [1]
    pd.testing.assert_frame_equal(resumed.images, whole.images)
    pd.testing.assert_frame_equal(resumed.views, whole.views)
