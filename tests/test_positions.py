"""``biasprobe positions`` (docs/protocols.md section 8): the grid, the object's pixels, the
known answer of a circular net, the density map, resuming, the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from biasprobe.core.errors import InputError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.schemas import POSITIONS_TABLE
from biasprobe.data.boxes import Box
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.models import ProbeModel
from biasprobe.positions import TrainingCentres, measure_positions, position_maps
from biasprobe.positions.grid import PositionGrid, default_step, object_patch, paste
from biasprobe.positions.maps import density_correlations, input_frame_centres
from tests._cli import one_line_error, run_cli


def _images(folder: Path, n: int, size: tuple[int, int] = (12, 10), seed: int = 0) -> Path:
    """An ImageFolder tree of n random RGB images (labels 0 and 1)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(1, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / str(i % 2) / f"img_{i:03d}.png")
    return folder


def circular_model(size: int = 16, classes: int = 2, seed: int = 0) -> ProbeModel:
    """Stride-1 circular-padded convolutions, global average pooling, mean 0 and std 1 (black = 0)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    )  # fmt: skip
    prep = Preprocessing(input_size=size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop_pct=1.0, max_shift=2)
    return ProbeModel(net, name="circular", preprocessing=prep, class_names=[f"c{i}" for i in range(classes)],
                      weights_sha256="0" * 64, weights_source="test")  # fmt: skip


def test_the_grid_covers_exactly_the_positions_where_the_object_fits_whole() -> None:
    # a 4 x 3 object on a 10-pixel canvas: left 0..6 (7 positions), top 0..7 (8), counted by hand
    grid = PositionGrid.for_object(10, 4, 3, step=1)
    assert grid.lefts.tolist() == [0, 1, 2, 3, 4, 5, 6] and grid.tops.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert grid.shape == (7, 8) and len(grid) == 56
    gx, gy, left, top = grid.corners()
    assert (left + 4 <= 10).all() and (top + 3 <= 10).all() and len(set(zip(left, top, strict=True))) == 56
    # step 3: 0, 3, 6 across (free 6); down the free 7 leaves one pixel, the grid sits at 0, 3, 6
    assert PositionGrid.for_object(10, 4, 3, step=3).lefts.tolist() == [0, 3, 6]
    assert PositionGrid.for_object(10, 4, 3, step=3).tops.tolist() == [0, 3, 6]
    # step 4 across a free range of 6: 2 positions, centred (0 + 1, 4 + 1)
    assert PositionGrid.for_object(10, 4, 3, step=4).lefts.tolist() == [1, 5]
    # the whole canvas: one position; centres normalised like box features
    one = PositionGrid.for_object(10, 10, 10)
    assert len(one) == 1 and one.centres()[0].tolist() == [0.5]
    x, y = grid.centres()
    assert x[0] == 2 / 10 and y[0] == 1.5 / 10 and gx[-1] == 6 and gy[-1] == 7
    assert grid.reference == 3 * 7 + 3  # column 3, row 3: nearest the centre
    # the default step: 1 while at most 48 positions per axis, else the smallest that keeps 48
    assert default_step(47) == 1 and default_step(48) == 2 and default_step(56) == 2 and default_step(200) == 5
    assert PositionGrid.for_object(224, 168, 120).step == 3  # free 104: 104 // 3 + 1 = 35 <= 48 < 104 // 2 + 1
    with pytest.raises(InputError, match="larger than the 10-pixel canvas"):
        PositionGrid.for_object(10, 11, 3)


def test_every_view_holds_the_object_crop_exactly_on_black() -> None:
    rng = np.random.default_rng(1)
    patch = torch.from_numpy(rng.integers(1, 256, size=(3, 3, 4), dtype=np.uint8))
    grid = PositionGrid.for_object(10, 4, 3, step=1)
    _, _, lefts, tops = grid.corners()
    views = paste(patch, lefts, tops, 10)
    for view, x, y in zip(views, lefts.tolist(), tops.tolist(), strict=True):
        assert torch.equal(view[:, y : y + 3, x : x + 4], patch)
        rest = view.clone()
        rest[:, y : y + 3, x : x + 4] = 0
        assert int(rest.count_nonzero()) == 0


def test_the_object_is_the_box_at_the_embedding_scale_or_the_whole_image() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(20, 40, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    # the shorter side is already the resize size: the box's pixels exactly
    box = Box(5, 4, 10, 6, 40, 20)
    patch = object_patch(image, box, resize_size=20, embed_size=30)
    assert torch.equal(patch, torch.from_numpy(pixels[4:10, 5:15]).permute(2, 0, 1))
    # twice the scale: the box of the image resized so its shorter side is 40
    big = np.asarray(image.resize((80, 40), Image.Resampling.BILINEAR))
    assert torch.equal(object_patch(image, box, resize_size=40, embed_size=30),
                       torch.from_numpy(big[8:20, 10:30].copy()).permute(2, 0, 1))  # fmt: skip
    # an object longer than E is brought to E; no box: the whole image, longer side E
    assert tuple(object_patch(image, Box(0, 0, 40, 20, 40, 20), resize_size=20, embed_size=30).shape) == (3, 15, 30)
    assert tuple(object_patch(image, None, resize_size=20, embed_size=12).shape) == (3, 6, 12)
    with pytest.raises(InputError, match="holds no pixel"):
        object_patch(image, Box(50, 4, 10, 6, 40, 20), resize_size=20, embed_size=30)


def test_a_circular_net_gives_the_same_answer_at_every_position(tmp_path: Path) -> None:
    model = circular_model()
    source = open_source(_images(tmp_path / "imgs", 5))
    result = measure_positions(model, source, embed_size=12, runtime=Runtime.create(device="cpu", threads=1),
                               batch_size=7, chunk_images=2, workers=0, progress=False)  # fmt: skip
    table = result.table
    assert list(table.columns) == list(POSITIONS_TABLE)
    # a 12 x 10 image at E = 12 is a 12 x 10 object: 5 x 7 positions on a 16-pixel canvas
    assert len(table) == 5 * 35 and (table.groupby("image_id").size() == 35).all()
    for _, rows in table.groupby("image_id"):
        assert rows["top1"].nunique() == 1
        assert np.ptp(rows["p_true"].to_numpy()) < 1e-5 and np.ptp(rows["p_top0"].to_numpy()) < 1e-5
        assert rows["correct"].nunique() == 1
    assert int(table["flips"].sum()) == 0 and int(table["pairs"].sum()) == 5 * (4 * 7 + 5 * 6)
    block = result.summary.positions
    assert block["instability"] == 0.0 and block["n"] == 5 and block["grid"] == [5, 7]
    maps = position_maps(table, 16)
    accuracy = maps.accuracy[np.isfinite(maps.accuracy)]
    assert accuracy.size == 35 and np.ptp(accuracy) == 0 and accuracy[0] == block["accuracy"]
    assert np.nanmax(maps.instability) == 0
    assert block["rho_density_accuracy"] is None and block["rho_density_instability"] is None


def test_batches_and_units_do_not_change_the_answers(tmp_path: Path) -> None:
    model = circular_model(seed=3)
    source = open_source(_images(tmp_path / "imgs", 4, size=(9, 13)))
    runtime = Runtime.create(device="cpu", threads=1)
    one = measure_positions(model, source, runtime=runtime, batch_size=1000, chunk_images=4, workers=0, progress=False)
    other = measure_positions(model, source, runtime=runtime, batch_size=5, chunk_images=1, workers=0, progress=False)
    pd.testing.assert_frame_equal(one.table.drop(columns=["p_true", "p_top0"]), other.table.drop(columns=["p_true", "p_top0"]))
    assert np.allclose(one.table["p_true"], other.table["p_true"], atol=1e-6)


def test_a_run_resumes_from_its_finished_units_and_refuses_other_settings(tmp_path: Path) -> None:
    model = circular_model(seed=4)
    source = open_source(_images(tmp_path / "imgs", 5))
    runtime = Runtime.create(device="cpu", threads=1)
    parts = tmp_path / "X.parts"
    options = {"runtime": runtime, "batch_size": 16, "chunk_images": 2, "workers": 0, "progress": False}
    first = measure_positions(model, source, parts_dir=parts, **options)  # type: ignore[arg-type]
    marker = parts / "done" / "000001.json"
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("part_*.parquet")}
    marker.unlink()
    again = measure_positions(model, source, parts_dir=parts, **options)  # type: ignore[arg-type]
    after = {p.name: p.stat().st_mtime_ns for p in parts.glob("part_*.parquet")}
    assert [n for n in before if before[n] != after[n]] == ["part_000001.parquet", "part_000001.skipped.parquet"]
    pd.testing.assert_frame_equal(first.table, again.table)
    with pytest.raises(InputError, match="holds a partial run with different"):
        measure_positions(model, source, parts_dir=parts, step=2, **options)  # type: ignore[arg-type]


def test_unusable_images_are_skipped_with_the_reason(tmp_path: Path) -> None:
    folder = _images(tmp_path / "imgs", 3)
    Image.fromarray(np.full((4, 30, 3), 9, np.uint8), "RGB").save(folder / "0" / "thin.png")
    (folder / "1" / "broken.png").write_bytes(b"not a png")
    result = measure_positions(circular_model(), open_source(folder), runtime=Runtime.create(device="cpu", threads=1),
                               workers=0, progress=False)  # fmt: skip
    reasons = dict(zip(result.skipped["path"], result.skipped["reason"], strict=True))
    assert "at least 8 a side" in reasons["0/thin.png"] and "1/broken.png" in reasons
    assert result.table["image_id"].nunique() == 3 and result.summary.skipped == len(result.skipped)


def test_the_density_map_peaks_where_the_training_boxes_are() -> None:
    # a position-biased training set on 56 x 56 images: objects centred near (20, 36), 16 pixels wide
    rng = np.random.default_rng(0)
    centres = np.column_stack([rng.normal(20, 1.5, 200), rng.normal(36, 1.5, 200)])
    boxes = [Box(cx - 8, cy - 8, 16, 16, 56, 56) for cx, cy in centres]
    training = TrainingCentres.from_boxes(boxes, resize_size=56, canvas=48, bandwidth=None, source="test")
    # the model's frame: the centre 48 x 48 crop of the 56-pixel image (4 pixels off each side)
    assert np.allclose(training.centres, (centres - 4) / 48)
    assert np.allclose(input_frame_centres(np.array([[0.5, 0.5, 0.0]]), np.array([[80, 40]]), resize_size=56, canvas=48),
                       [[0.5, 0.5]])  # fmt: skip
    table = _grid_table(canvas=48, size=16, images=4)
    maps = position_maps(table, 48)
    density = training.density_map(maps)
    row, col = np.unravel_index(np.argmax(density), density.shape)
    assert abs(col - (20 - 4)) <= 1 and abs(row - (36 - 4)) <= 1  # within one grid step (cells of 1 pixel)
    assert math.isclose(float(density.sum()) / maps.cells**2, 1.0, rel_tol=0.05)  # a density over the unit square


def _grid_table(*, canvas: int, size: int, images: int, correct_near: tuple[float, float] | None = None) -> pd.DataFrame:
    """A positions table by hand: ``images`` images with a ``size``-pixel object at step 1; with
    ``correct_near``, an image is right only within 0.15 of that point, and unstable elsewhere."""
    grid = PositionGrid.for_object(canvas, size, size, 1)
    gx, gy, _, _ = grid.corners()
    x, y = grid.centres()
    frames = []
    for i in range(images):
        near = np.ones(len(x), bool) if correct_near is None else np.hypot(x - correct_near[0], y - correct_near[1]) < 0.15 + 0.02 * i
        frames.append(pd.DataFrame({
            "image_id": f"{i:016x}", "path": f"{i}.png", "label": 1, "model": "m", "step": 1, "gx": gx, "gy": gy,
            "x": x, "y": y, "top1": np.where(near, 1, 0), "p_true": near * 0.9, "correct": near, "p_top0": 0.9,
            "pairs": 2, "flips": (~near).astype(int),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_density_correlations_have_the_sign_of_the_bias_and_bootstrap_cis() -> None:
    rng = np.random.default_rng(1)
    centres = np.column_stack([rng.normal(20, 2, 300), rng.normal(20, 2, 300)])
    boxes = [Box(cx - 8, cy - 8, 16, 16, 56, 56) for cx, cy in centres]
    training = TrainingCentres.from_boxes(boxes, resize_size=56, canvas=48, bandwidth=0.5, source="test")
    table = _grid_table(canvas=48, size=16, images=6, correct_near=((20 - 4) / 48, (20 - 4) / 48))
    maps = position_maps(table, 48)
    rho = density_correlations(maps, training.density_map(maps), seed=0, resamples=200)
    assert rho["accuracy"].value > 0.5 and rho["instability"].value < -0.5
    assert 0 < rho["accuracy"].ci_low < rho["accuracy"].ci_high and rho["instability"].ci_high < 0
    again = density_correlations(maps, training.density_map(maps), seed=0, resamples=200)
    assert again["accuracy"].ci == rho["accuracy"].ci  # seeded


def test_the_command_writes_the_table_and_its_companions(tmp_path: Path) -> None:
    out = tmp_path / "pos.parquet"
    done = run_cli("positions", "--model", "efficientnet_lite0", "--images", "builtin:photos", "--limit", "2",
                   "--step", "28", "--threads", "1", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(out)
    # E = 168 on 224: the square astronaut at 0, 28, 56 per axis; the wider chelsea has 5 rows
    assert (table["path"] == "astronaut.png").sum() == 9 and len(table) == 9 + 15
    assert "no training boxes" in done.stdout
    summary = json.loads((tmp_path / "pos.summary.json").read_text())
    assert summary["format"] == "biasprobe.positions" and summary["positions"]["n"] == 2
    assert (tmp_path / "pos.skipped.parquet").is_file() and not (tmp_path / "pos.parts").exists()
    bad = run_cli("positions", "--model", "efficientnet_lite0", "--images", str(tmp_path / "nothing"), "--out", str(out))
    assert "images not found" in one_line_error(bad)
    missing = run_cli("report", "--invariance", str(out), "--positions", str(tmp_path / "none.parquet"), "--out",
                      str(tmp_path / "r.html"))  # fmt: skip
    assert "(--positions)" in one_line_error(missing)


def test_the_report_shows_the_three_maps_and_the_correlations_per_model(tmp_path: Path) -> None:
    from _report_data import write_stage_files

    from biasprobe.positions.run import write_result
    from biasprobe.report import write_report

    source = open_source(_images(tmp_path / "imgs", 6, size=(8, 8)))
    runtime = Runtime.create(device="cpu", threads=1)
    tables = []
    for seed in (0, 1):
        result = measure_positions(circular_model(seed=seed), source, runtime=runtime, workers=0, progress=False)
        tables.append(write_result(result, tmp_path / f"pos{seed}.parquet"))
    rng = np.random.default_rng(0)
    x0, side = rng.uniform(2, 6, 40), rng.uniform(4, 7, 40)
    pd.DataFrame({"path": [f"t{i}.png" for i in range(40)], "xmin": x0, "ymin": x0, "xmax": x0 + side, "ymax": x0 + side,
                  "image_width": 16, "image_height": 16}).to_csv(tmp_path / "train.csv", index=False)  # fmt: skip
    scores, invs = write_stage_files(tmp_path, n=20, models=("m",))
    out = write_report(scores, invs, out=tmp_path / "r.html", positions=tables, boxes_train=tmp_path / "train.csv")
    html = out.read_text()
    assert '<section id="positions">' in html and "rho(density, accuracy)" in html
    assert html.count('<td class="l model">circular') == 2  # the second is told apart by its file
    assert "circular (pos1)" in html and "data:image/png;base64," in html.split('<section id="positions">')[1]
    assert "No training boxes" not in html
    bare = write_report(scores, invs, out=tmp_path / "bare.html").read_text()
    assert "No positions table was given" in bare


def test_the_training_centres_of_an_index_are_its_boxes_in_the_models_frame(tmp_path: Path) -> None:
    from _typicality_data import tiny_model

    from biasprobe.index.build import build_index
    from biasprobe.positions import training_centres_from_index

    rng = np.random.default_rng(5)
    folder = tmp_path / "train"
    folder.mkdir()
    rows = []
    for i in range(12):
        w, h = 40 + 4 * (i % 3), 36
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "RGB").save(folder / f"t{i:02d}.png")
        x0, y0 = int(rng.integers(0, 20)), int(rng.integers(0, 16))
        rows.append({"path": f"t{i:02d}.png", "xmin": x0, "ymin": y0, "xmax": x0 + 12, "ymax": y0 + 10,
                     "image_width": w, "image_height": h})  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "boxes.csv", index=False)
    model = tiny_model()
    build_index(open_source(folder, boxes=tmp_path / "boxes.csv"), model, tmp_path / "idx",
                runtime=Runtime.create(device="cpu", threads=1))  # fmt: skip
    prep = model.preprocessing
    training = training_centres_from_index(tmp_path / "idx", resize_size=prep.resize_size, canvas=prep.input_size)
    assert training is not None and len(training.centres) == 12 and training.bandwidth > 0
    boxes = [Box(r["xmin"], r["ymin"], 12, 10, r["image_width"], r["image_height"]) for r in rows]
    expected = input_frame_centres(np.array([b.features() for b in boxes]),
                                   np.array([(b.image_width, b.image_height) for b in boxes]),
                                   resize_size=prep.resize_size, canvas=prep.input_size)  # fmt: skip
    assert np.allclose(np.sort(training.centres, axis=0), np.sort(expected, axis=0))


def test_every_grid_fits_whole_is_centred_and_has_the_counted_size() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.integers(1, 64), st.data())
    def check(canvas: int, data: st.DataObject) -> None:
        w = data.draw(st.integers(1, canvas))
        h = data.draw(st.integers(1, canvas))
        step = data.draw(st.none() | st.integers(1, 70))
        grid = PositionGrid.for_object(canvas, w, h, step)
        s = grid.step
        for size, axis in ((w, grid.lefts), (h, grid.tops)):
            assert len(axis) == (canvas - size) // s + 1
            assert axis.min() >= 0 and axis.max() + size <= canvas  # fits whole
            assert (np.diff(axis) == s).all()
            left_margin, right_margin = axis.min(), canvas - size - axis.max()
            assert 0 <= right_margin - left_margin <= 1  # centred (the odd pixel on the right)
        if step is None:
            assert max(grid.shape) <= 48 and (s == 1 or (canvas - min(w, h)) // (s - 1) + 1 > 48)

    check()
