"""The built-in world: deterministic, boxes match the pasted pixels, no object ever clipped
with the defaults, test digits unseen, readable by the foundation's sources and boxes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from biasprobe.cli import main
from biasprobe.core.errors import InputError
from biasprobe.data.loading import load_image
from biasprobe.data.sources import open_source
from biasprobe.world import WorldConfig, make_world, read_world_info

SMALL = WorldConfig(digits=60, train_placements=2, test_placements=2)


def _file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world(tmp_path_factory.mktemp("w") / "world", SMALL).root


@pytest.fixture(scope="module")
def default_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world(tmp_path_factory.mktemp("w") / "world", WorldConfig()).root


def test_same_seed_same_bytes_other_seed_differs(small_world: Path, tmp_path: Path) -> None:
    again = make_world(tmp_path / "again", SMALL).root
    assert _file_hashes(again) == _file_hashes(small_world)
    other = make_world(tmp_path / "other", WorldConfig(digits=60, train_placements=2, test_placements=2, seed=1)).root
    a = pd.read_csv(small_world / "test" / "boxes.csv")
    b = pd.read_csv(other / "test" / "boxes.csv")
    assert not a[["xmin", "ymin", "scale"]].equals(b[["xmin", "ymin", "scale"]])


def test_layout_and_world_json(small_world: Path) -> None:
    info = read_world_info(small_world)
    assert info.config == SMALL
    meta = json.loads((small_world / "world.json").read_text())
    assert meta["config"]["input_size"] == 48 and meta["config"]["canvas"] == 56
    for split in ("train", "test"):
        boxes = pd.read_csv(small_world / split / "boxes.csv")
        assert sorted(p.name for p in (small_world / split).iterdir() if p.is_dir()) == [str(i) for i in range(10)]
        assert len(boxes) == len(list((small_world / split).rglob("*.png")))
        assert meta["splits"][split]["images"] == len(boxes)
        assert {"path", "label", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height",
                "clipped", "offset_x", "offset_y", "scale"} <= set(boxes.columns)
        assert (boxes["path"].str.split("/").str[0].astype(int) == boxes["label"]).all()
    assert (info.n_train, info.n_test) == (len(pd.read_csv(small_world / "train" / "boxes.csv")),
                                           len(pd.read_csv(small_world / "test" / "boxes.csv")))


def test_test_digits_are_held_out(default_world: Path) -> None:
    train = pd.read_csv(default_world / "train" / "boxes.csv")
    test = pd.read_csv(default_world / "test" / "boxes.csv")
    assert not set(train["digit"]) & set(test["digit"])
    share = test["digit"].nunique() / (test["digit"].nunique() + train["digit"].nunique())
    assert share == pytest.approx(0.3, abs=0.01)
    assert train["digit"].nunique() + test["digit"].nunique() == 1797


def test_boxes_match_pasted_pixels(small_world: Path) -> None:
    for split in ("train", "test"):
        for row in pd.read_csv(small_world / split / "boxes.csv").itertuples():
            img, _ = load_image(small_world / split / row.path)
            arr = np.asarray(img)
            assert img.size == (56, 56) and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all()
            ink = arr[..., 0] > 0
            inside = np.zeros_like(ink)
            inside[row.ymin : row.ymax, row.xmin : row.xmax] = True
            assert ink.any() and not (ink & ~inside).any(), row.path
            size = row.xmax - row.xmin
            assert size == row.ymax - row.ymin and row.scale == pytest.approx(size / 16)
            assert row.offset_x == pytest.approx(row.xmin + size / 2 - 28)
            assert row.offset_y == pytest.approx(row.ymin + size / 2 - 28)


def test_defaults_never_clip_and_bias_is_there(default_world: Path) -> None:
    train = pd.read_csv(default_world / "train" / "boxes.csv")
    test = pd.read_csv(default_world / "test" / "boxes.csv")
    for boxes in (train, test):
        assert not boxes["clipped"].any()
        # every crop window [s, s + 48), s = 0..8, holds the whole pasted square
        assert (boxes[["xmin", "ymin"]] >= 8).all().all() and (boxes[["xmax", "ymax"]] <= 48).all().all()
    assert train[["offset_x", "offset_y"]].abs().max().max() <= 6.5
    assert train[["offset_x", "offset_y"]].std().max() < 2.5
    assert test[["offset_x", "offset_y"]].std().min() > 4.0
    assert test["scale"].min() < 0.85 and test["scale"].max() > 1.15
    assert train["scale"].between(0.8, 1.2).all()
    assert not train.duplicated(["digit", "xmin", "ymin", "xmax"]).any()


def test_clipped_flag_is_set_when_objects_leave_a_window(tmp_path: Path) -> None:
    wide = make_world(tmp_path / "wide", WorldConfig(digits=40, test_offset_max=16.0, test_placements=4))
    test = pd.read_csv(wide.root / "test" / "boxes.csv")
    outside = (test[["xmin", "ymin"]] < 8).any(axis=1) | (test[["xmax", "ymax"]] > 48).any(axis=1)
    assert outside.any()
    assert (test["clipped"] == outside).all()
    assert wide.n_clipped == int(outside.sum())


def test_sources_attach_boxes(small_world: Path) -> None:
    source = open_source(small_world / "test", boxes=small_world / "test" / "boxes.csv")
    boxes = pd.read_csv(small_world / "test" / "boxes.csv").set_index("path")
    assert len(source.records) == len(boxes)
    for record in source.records:
        box = record.box
        row = boxes.loc[record.relative]
        assert box is not None and record.label == row["label"]
        assert (box.xmin, box.ymin, box.width, box.image_width) == (row["xmin"], row["ymin"], row["xmax"] - row["xmin"], 56)


def test_existing_folders_are_protected(small_world: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--overwrite"):
        make_world(small_world, SMALL)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a world"):
        make_world(precious, SMALL, overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="test_fraction"):
        make_world(tmp_path / "bad", WorldConfig(test_fraction=1.5))


def test_cli_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["world", "--out", str(out), "--digits", "40", "--seed", "3", "--train-placements", "1"]) == 0
    assert "world written" in capsys.readouterr().out
    info = read_world_info(out)
    assert info.config.seed == 3 and info.config.digits == 40 and info.n_train == 28
    assert Image.open(next((out / "train" / "0").glob("*.png"))).mode == "RGB"
    assert main(["world", "--out", str(out), "--digits", "40"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["world", "--out", str(out), "--digits", "40", "--overwrite", "--seed", "4"]) == 0
    assert read_world_info(out).config.seed == 4
