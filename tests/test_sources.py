"""Image sources: ImageFolder, flat folders, manifests, bundled photos, boxes, class maps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.data.boxes import read_boxes
from biasprobe.data.classes import read_class_map
from biasprobe.data.photos import BUILTIN_PHOTOS, bundled_photo_paths
from biasprobe.data.sources import open_source


def _write_png(path: Path, value: int, size: tuple[int, int] = (8, 6)) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path.read_bytes()


def test_bundled_photos_are_the_nine_real_photos(photos) -> None:
    assert [r.relative for r in photos] == [
        "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
        "motorcycle_right.png", "china.jpg", "flower.jpg", "grace_hopper.jpg",
    ]
    paths = bundled_photo_paths()
    assert "skimage" in str(paths["coffee"]) and "sklearn" in str(paths["china"]) and "matplotlib" in str(paths["grace_hopper"])
    img, iid = photos.records[2].load()
    assert img.mode == "RGB" and img.size == (600, 400)
    assert iid == hashlib.sha1(paths["coffee"].read_bytes()).hexdigest()[:16]
    assert not photos.has_labels


def test_imagefolder_labels_from_integer_folders(tmp_path: Path) -> None:
    for label in (0, 2, 10):
        _write_png(tmp_path / str(label) / "a.png", label)
    (tmp_path / "notes.txt").write_text("hello")
    src = open_source(tmp_path)
    assert src.kind == "imagefolder"
    assert [(r.relative, r.label) for r in src] == [("0/a.png", 0), ("10/a.png", 10), ("2/a.png", 2)]
    assert [s.path for s in src.skipped] == ["notes.txt"]


def test_imagefolder_named_folders_sorted_and_non_images_listed(tmp_path: Path) -> None:
    _write_png(tmp_path / "dog" / "x.png", 1)
    _write_png(tmp_path / "cat" / "y.png", 2)
    (tmp_path / "cat" / "readme.md").write_text("not an image")
    src = open_source(tmp_path)
    assert [(r.relative, r.label, r.label_name) for r in src] == [("cat/y.png", 0, "cat"), ("dog/x.png", 1, "dog")]
    assert len(src.skipped) == 1 and "not an image file" in src.skipped[0].reason


def test_classes_file_maps_wnids_to_indices(tmp_path: Path) -> None:
    _write_png(tmp_path / "imgs" / "n01440764" / "a.png", 1)
    _write_png(tmp_path / "imgs" / "n09999999" / "b.png", 2)
    mapping = tmp_path / "LOC_synset_mapping.txt"
    mapping.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    classes = read_class_map(mapping)
    src = open_source(tmp_path / "imgs", classes=classes)
    assert [(r.label, r.label_name) for r in src] == [(0, "tench, Tinca tinca")]
    assert "not in the classes file" in src.skipped[0].reason


def test_classes_file_csv_and_json(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("folder,index,name\nn1,967,espresso\n")
    assert read_class_map(tmp_path / "c.csv").entries == {"n1": (967, "espresso")}
    (tmp_path / "c.json").write_text(json.dumps({"n1": [281, "tabby"], "n2": 5}))
    assert read_class_map(tmp_path / "c.json").entries == {"n1": (281, "tabby"), "n2": (5, "n2")}
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="folder,index"):
        read_class_map(tmp_path / "bad.csv")


def test_flat_folder_has_no_labels_and_recurses(tmp_path: Path) -> None:
    a = _write_png(tmp_path / "a.png", 1)
    _write_png(tmp_path / "sub" / "b.png", 2)
    src = open_source(tmp_path)
    assert src.kind == "flat"
    assert [(r.relative, r.label) for r in src] == [("a.png", None), ("sub/b.png", None)]
    assert src.records[0].load()[1] == hashlib.sha1(a).hexdigest()[:16]


def test_manifest_with_labels_and_boxes(tmp_path: Path) -> None:
    _write_png(tmp_path / "img" / "a.png", 1, size=(20, 10))
    _write_png(tmp_path / "img" / "b.png", 2)
    (tmp_path / "m.csv").write_text(
        "path,label,xmin,ymin,xmax,ymax,image_width,image_height\n"
        "img/a.png,3,2,1,12,6,20,10\n"
        "img/b.png,,,,,,,\n"
        "img/c.png,cat,,,,,,\n"
    )
    src = open_source(tmp_path / "m.csv")
    assert [(r.relative, r.label) for r in src] == [("img/a.png", 3), ("img/b.png", None)]
    box = src.records[0].box
    assert box is not None and (box.xmin, box.ymin, box.width, box.height) == (2, 1, 10, 5)
    cx, cy, size = box.features()
    assert (cx, cy) == pytest.approx((0.35, 0.35)) and size == pytest.approx(np.log(np.sqrt(50 / 200)))
    assert src.records[1].box is None
    assert src.skipped[0].path == "img/c.png" and "classes file" in src.skipped[0].reason


def test_voc_boxes_are_one_based_inclusive_and_largest_wins(tmp_path: Path) -> None:
    _write_png(tmp_path / "imgs" / "ILSVRC2012_val_00000001.JPEG", 1, size=(100, 50))
    xml = tmp_path / "boxes" / "ILSVRC2012_val_00000001.xml"
    xml.parent.mkdir()
    xml.write_text(
        "<annotation><filename>ILSVRC2012_val_00000001</filename><size><width>100</width><height>50</height></size>"
        "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>"
        "<object><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>60</xmax><ymax>40</ymax></bndbox></object>"
        "</annotation>"
    )
    table = read_boxes(tmp_path / "boxes")
    src = open_source(tmp_path / "imgs", boxes=tmp_path / "boxes")
    box = src.records[0].box
    assert box == table.lookup("ILSVRC2012_val_00000001.JPEG")
    # 1-based inclusive: w = 60 - 11 + 1 = 50, h = 40 - 21 + 1 = 20, 0-based origin (10, 20)
    assert (box.xmin, box.ymin, box.width, box.height, box.image_width, box.image_height) == (10, 20, 50, 20, 100, 50)
    assert box.features()[:2] == pytest.approx((0.35, 0.6))


def test_voc_file_without_a_coordinate_is_refused(tmp_path: Path) -> None:
    xml = tmp_path / "a.xml"
    xml.write_text(
        "<annotation><size><width>100</width><height>50</height></size>"
        "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax></bndbox></object></annotation>"
    )
    with pytest.raises(InputError, match=r"cannot read Pascal VOC boxes from .*: no <ymax> in <bndbox>"):
        read_boxes(xml)


def test_photos_are_importable_from_sources_too() -> None:
    from biasprobe.data import sources

    assert sources.BUILTIN_PHOTOS == BUILTIN_PHOTOS and sources.bundled_photo_paths is bundled_photo_paths


def test_limit_and_errors(tmp_path: Path) -> None:
    for i in range(5):
        _write_png(tmp_path / "d" / f"{i}.png", i)
    assert len(open_source(tmp_path / "d", limit=2)) == 2
    with pytest.raises(InputError, match="images not found"):
        open_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        open_source(tmp_path / "empty")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match="expects a folder"):
        open_source(tmp_path / "f.txt")
    assert open_source(BUILTIN_PHOTOS, limit=3).records[-1].relative == "coffee.png"
