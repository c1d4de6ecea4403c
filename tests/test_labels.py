"""Labels that match the model's classes or are refused (issue 15): wnid folders, classes files
read by wnid, VOC object names, and label sets that cannot fit (docs/reliability.md)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from _cli import invariance_cli, one_line_error

from biasprobe.core.errors import InputError
from biasprobe.data.classes import ClassMap, read_class_map
from biasprobe.data.labels import ClassSpace, Labeller
from biasprobe.data.photos import bundled_photo_paths
from biasprobe.data.sources import open_source
from biasprobe.models.imagenet import imagenet_class_names, imagenet_wnids

ESPRESSO, TIGER_CAT = ("n07920052", 967), ("n02123159", 282)  # coffee (Lite0 answers espresso), chelsea


def imagenet_space() -> ClassSpace:
    return ClassSpace(tuple(imagenet_class_names()), imagenet_wnids(), model="efficientnet_lite0")


def small_space(count: int = 10) -> ClassSpace:
    return ClassSpace(tuple(str(i) for i in range(count)), None, model="world_vgg")


def _photo_tree(root: Path, folders: dict[str, str]) -> Path:
    """Copy bundled photos into class folders: {folder: photo name}."""
    photos = bundled_photo_paths()
    for folder, photo in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(photos[photo], root / folder / f"{photo}.png")
    return root


# -- through the command line ----------------------------------------------------------------


def test_cli_wnid_folders_are_labelled_with_the_imagenet_indices(tmp_path: Path) -> None:
    images = _photo_tree(tmp_path / "imgs", {ESPRESSO[0]: "coffee", TIGER_CAT[0]: "chelsea"})
    done = invariance_cli(images, tmp_path / "x.parquet")
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(tmp_path / "x.parquet")
    assert dict(zip(table.path, table.label, strict=True)) == {
        f"{TIGER_CAT[0]}/chelsea.png": TIGER_CAT[1], f"{ESPRESSO[0]}/coffee.png": ESPRESSO[1]
    }
    assert set(table.label_name) == {"espresso", "tiger cat"}
    assert table.set_index("path").correct0[f"{ESPRESSO[0]}/coffee.png"]  # was false: folders numbered 0, 1
    assert "class folders named by ImageNet wnid" in done.stderr


def test_cli_synset_mapping_of_a_few_classes_is_read_by_wnid(tmp_path: Path) -> None:
    images = _photo_tree(tmp_path / "imgs", {ESPRESSO[0]: "coffee", TIGER_CAT[0]: "chelsea"})
    mapping = tmp_path / "LOC_synset_mapping.txt"  # the user's 2 classes: line numbers 0 and 1
    mapping.write_text(f"{ESPRESSO[0]} espresso\n{TIGER_CAT[0]} tiger cat, Felis catus\n")
    done = invariance_cli(images, tmp_path / "x.parquet", "--classes", str(mapping))
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(tmp_path / "x.parquet").sort_values("path")
    assert table.label.tolist() == [TIGER_CAT[1], ESPRESSO[1]]
    assert table.label_name.tolist() == ["tiger cat, Felis catus", "espresso"]
    assert "read by wnid" in done.stderr


def test_cli_sorted_numbering_for_an_imagenet_model_is_refused(tmp_path: Path) -> None:
    images = _photo_tree(tmp_path / "imgs", {"cat": "chelsea", "coffee": "coffee"})
    line = one_line_error(invariance_cli(images, tmp_path / "x.parquet"))
    assert "the 2 class folders are not all class indices or ImageNet wnids (e.g. 'cat')" in line
    assert "--classes FILE" in line and not (tmp_path / "x.parquet").exists()


def test_cli_labels_beyond_the_models_classes_are_refused(tmp_path: Path) -> None:
    images = _photo_tree(tmp_path / "imgs", {"1000": "coffee", "1001": "chelsea"})
    line = one_line_error(invariance_cli(images, tmp_path / "x.parquet"))
    assert "no label fits model efficientnet_lite0 (1000 ImageNet-1k classes): labels 1000, 1001 are outside" in line


def test_cli_voc_object_names_label_a_flat_validation_folder(tmp_path: Path) -> None:
    """ImageNet's validation layout: flat ILSVRC2012_val_*.JPEG and one VOC file per image."""
    images, boxes = tmp_path / "val", tmp_path / "boxes"
    images.mkdir()
    boxes.mkdir()
    shutil.copy(bundled_photo_paths()["coffee"], images / "ILSVRC2012_val_00000001.JPEG")
    (boxes / "ILSVRC2012_val_00000001.xml").write_text(
        "<annotation><filename>ILSVRC2012_val_00000001</filename><size><width>600</width><height>400</height></size>"
        f"<object><name>{ESPRESSO[0]}</name><bndbox><xmin>101</xmin><ymin>51</ymin><xmax>500</xmax><ymax>350</ymax>"
        "</bndbox></object></annotation>"
    )
    done = invariance_cli(images, tmp_path / "x.parquet", "--boxes", str(boxes))
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(tmp_path / "x.parquet")
    assert table.label.tolist() == [ESPRESSO[1]] and table.correct0.tolist() == [True]
    assert "boxes: 1 of 1 images have a box" in done.stderr and "1 labelled by their boxes' object names" in done.stderr


# -- the rules, on the library ------------------------------------------------------------------


def test_imagenet_wnids_come_from_timm_in_class_order(lite0) -> None:
    from biasprobe.models.classes import class_space

    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids[0] == "n01440764" and wnids[ESPRESSO[1]] == ESPRESSO[0]
    space = class_space(lite0)
    assert space.wnids == wnids and space.names[ESPRESSO[1]] == "espresso"
    assert space.wnid_index(TIGER_CAT[0]) == TIGER_CAT[1]


def test_integer_folders_keep_their_labels_with_a_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images = _photo_tree(tmp_path, {str(i): "coffee" for i in (0, 3, 9)})
    with caplog.at_level(logging.INFO):
        src = open_source(images, class_space=small_space(10))
    assert [(r.relative, r.label, r.label_name) for r in src] == [
        ("0/coffee.png", 0, "0"), ("3/coffee.png", 3, "3"), ("9/coffee.png", 9, "9")
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_some_labels_outside_the_classes_warn_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images = _photo_tree(tmp_path, {"3": "coffee", "12": "chelsea"})
    with caplog.at_level(logging.WARNING):
        src = open_source(images, class_space=small_space(10))
    assert sorted(r.label for r in src) == [3, 12]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "labels 12 (1 of 2 labelled images) are outside the classes of model world_vgg" in warnings[0]


def test_wnid_folders_for_a_model_without_imagenet_classes_are_refused(tmp_path: Path) -> None:
    images = _photo_tree(tmp_path, {ESPRESSO[0]: "coffee", TIGER_CAT[0]: "chelsea"})
    with pytest.raises(InputError, match=r"are ImageNet wnids \(e.g. n02123159\), but model world_vgg \(10 classes\) is not an ImageNet-1k model"):
        open_source(images, class_space=small_space(10))
    # a model with exactly as many classes as folders: torchvision's sorted numbering is accepted
    assert [r.label for r in open_source(images, class_space=small_space(2))] == [0, 1]


def test_wnid_folders_the_model_lacks_are_skipped_with_the_reason(tmp_path: Path) -> None:
    images = _photo_tree(tmp_path, {ESPRESSO[0]: "coffee", "n09999999": "chelsea"})
    src = open_source(images, class_space=imagenet_space())
    assert [r.label for r in src] == [ESPRESSO[1]]
    assert src.skipped[0].path == "n09999999/chelsea.png" and "is a wnid that is not one of the classes" in src.skipped[0].reason


def test_sorted_numbering_without_a_model_is_unchanged_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images = _photo_tree(tmp_path, {ESPRESSO[0]: "coffee", TIGER_CAT[0]: "chelsea"})
    with caplog.at_level(logging.INFO):
        src = open_source(images)
    assert [r.label for r in src] == [0, 1]  # torchvision's ImageFolder numbering, as before
    assert src.labels_from is not None and "numbered in sorted order" in src.labels_from
    assert any("numbered in sorted order" in r.getMessage() for r in caplog.records)


def test_classes_file_with_indices_must_agree_with_an_imagenet_model(tmp_path: Path) -> None:
    (tmp_path / "good.csv").write_text(f"folder,index,name\n{ESPRESSO[0]},{ESPRESSO[1]},espresso\n")
    Labeller.create(read_class_map(tmp_path / "good.csv"), imagenet_space())
    (tmp_path / "bad.csv").write_text(f"folder,index,name\n{ESPRESSO[0]},5,espresso\n")
    with pytest.raises(InputError, match=r"maps n07920052 \(espresso\) to class 5, but class 5 of model efficientnet_lite0 .* is n01496331 \(electric ray\) and its class for n07920052 is 967"):
        Labeller.create(read_class_map(tmp_path / "bad.csv"), imagenet_space())
    # for a model that is not ImageNet-1k, the file's indices are the truth
    assert Labeller.create(read_class_map(tmp_path / "bad.csv"), small_space(10)).label_of(ESPRESSO[0]) == (5, "espresso")


def test_line_numbered_file_mixing_wnids_and_names_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mixed.txt").write_text(f"{ESPRESSO[0]} espresso\ncat a cat\n")
    classes = read_class_map(tmp_path / "mixed.txt")
    assert classes.positional and classes.entries == {ESPRESSO[0]: (0, "espresso"), "cat": (1, "a cat")}
    with pytest.raises(InputError, match="mixes ImageNet wnids"):
        Labeller.create(classes, imagenet_space())
    assert Labeller.create(classes, None).label_of("cat") == (1, "a cat")  # no model: line numbers, as before


def test_json_list_of_wnids_is_read_by_wnid(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps([TIGER_CAT[0], ESPRESSO[0], "n09999999"]))
    labeller = Labeller.create(read_class_map(tmp_path / "c.json"), imagenet_space())
    assert labeller.label_of(ESPRESSO[0])[0] == ESPRESSO[1]
    with pytest.raises(InputError, match="n09999999 is not one of the classes"):
        labeller.label_of("n09999999")
    plan = labeller.folder_labels([ESPRESSO[0], "n09999999"])
    assert plan.labels == {ESPRESSO[0]: (ESPRESSO[1], ESPRESSO[0])} and "n09999999" in plan.reasons


def test_manifest_labels_wnids_integers_and_bad_numbers(tmp_path: Path) -> None:
    shutil.copy(bundled_photo_paths()["coffee"], tmp_path / "a.png")
    (tmp_path / "m.csv").write_text(f"path,label\na.png,{ESPRESSO[0]}\na.png,3.0\na.png,3.7\na.png,nan\na.png,cat\n")
    src = open_source(tmp_path / "m.csv", class_space=imagenet_space())
    assert [(r.label, r.label_name) for r in src] == [(ESPRESSO[1], "espresso"), (3, "3.0")]
    reasons = [s.reason for s in src.skipped]
    assert reasons[:2] == ["label '3.7' is not a whole number", "label 'nan' is not a whole number"]
    assert "neither an integer nor in the classes file nor an ImageNet wnid" in reasons[2]


def test_mixed_integer_and_named_folders_say_how_they_were_numbered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images = _photo_tree(tmp_path, {"0": "coffee", "2": "coffee", "extra": "chelsea"})
    with caplog.at_level(logging.WARNING):
        src = open_source(images)
    assert [(r.relative, r.label) for r in src] == [("0/coffee.png", 0), ("2/coffee.png", 1), ("extra/chelsea.png", 2)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "mix integers and other names" in warnings[0] and "folder '2' is label 1" in warnings[0]
    with pytest.raises(InputError, match=r"numbering them 0\.\.2 in sorted order cannot match model world_vgg"):
        open_source(images, class_space=small_space(10))


def test_class_map_is_still_constructible_from_entries() -> None:
    classes = ClassMap({"a": (1, "A")})
    assert not classes.positional and Labeller.create(classes, small_space(3)).label_of("a") == (1, "A")


def test_classes_file_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_bytes(b"n07920052 caf\xe9\n")
    with pytest.raises(InputError, match=r"cannot read classes file .*c\.txt: it is not UTF-8 text"):
        read_class_map(tmp_path / "c.txt")
