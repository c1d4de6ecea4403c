"""ImageNet as users have it on disk: Kaggle's LOC solution files, the synset mapping, the flat
validation folder and the train tree, as real-format fixtures written here."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import invariance_cli, one_line_error
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.data.boxes import read_boxes
from biasprobe.data.classes import read_class_map
from biasprobe.data.imagenet_layout import file_key, is_loc_solution, read_file_labels, read_loc_solution
from biasprobe.data.labels import ClassSpace
from biasprobe.data.sources import open_source

SYNSETS = """n01440764 tench, Tinca tinca
n01443537 goldfish, Carassius auratus
n01484850 great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias
"""

VAL_SOLUTION = """ImageId,PredictionString
ILSVRC2012_val_00000001,n01440764 10 5 29 24 n01440764 1 1 8 8 \n\
ILSVRC2012_val_00000002,n01443537 1 1 40 30 \n\
ILSVRC2012_val_00000003,n01440764 1 1 10 10 n01484850 5 5 20 20 \n\
ILSVRC2012_val_00000004,n09999999 1 1 10 10 \n\
"""

TRAIN_SOLUTION = """ImageId,PredictionString
n01440764_10026,n01440764 3 4 22 19 \n\
n01443537_1032,n01443537 1 1 20 20 \n\
"""


def _jpeg(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 80, 40)).save(path, "JPEG")
    return path


@pytest.fixture()
def kaggle(tmp_path: Path) -> Path:
    """A Kaggle-style ImageNet: LOC files, the synset mapping, a flat val/ and a train/ tree."""
    (tmp_path / "LOC_synset_mapping.txt").write_text(SYNSETS)
    (tmp_path / "LOC_val_solution.csv").write_text(VAL_SOLUTION)
    (tmp_path / "LOC_train_solution.csv").write_text(TRAIN_SOLUTION)
    for i in range(1, 6):  # image 5 is in no LOC file
        _jpeg(tmp_path / "val" / f"ILSVRC2012_val_{i:08d}.JPEG")
    _jpeg(tmp_path / "train" / "n01440764" / "n01440764_10026.JPEG", (50, 40))
    _jpeg(tmp_path / "train" / "n01443537" / "n01443537_1032.JPEG")
    return tmp_path


def test_loc_solution_reads_every_box_and_the_largest(kaggle):
    path = kaggle / "LOC_val_solution.csv"
    assert is_loc_solution(path) and not is_loc_solution(kaggle / "LOC_synset_mapping.txt")
    solution = read_loc_solution(path)
    assert len(solution) == 4
    boxes = solution.boxes["ILSVRC2012_val_00000001"]
    assert len(boxes) == 2 and boxes[1].xmax == 8
    assert solution.largest("ILSVRC2012_val_00000001") == boxes[0]
    assert solution.wnid_of("ILSVRC2012_val_00000002") == ("n01443537", None)
    wnid, why = solution.wnid_of("ILSVRC2012_val_00000003")
    assert wnid is None and "several classes (n01440764, n01484850)" in (why or "")
    assert file_key("val/ILSVRC2012_val_00000001.JPEG") == file_key("ILSVRC2012_val_00000001") == "ILSVRC2012_val_00000001"


@pytest.mark.parametrize(("line", "words"), [
    ("ILSVRC2012_val_00000009,n01440764 1 1 10", "once per box, got 4 values"),
    ("ILSVRC2012_val_00000009,tench 1 1 10 10", "'tench' is not a wnid"),
    ("ILSVRC2012_val_00000009,n01440764 1 one 10 10", "not numbers"),
    ("ILSVRC2012_val_00000009,n01440764 10 1 5 10", "is not a box"),
    ("ILSVRC2012_val_00000009,n01440764 1 1 10 10,extra", "expected 2 fields"),
    ("ILSVRC2012_val_00000001,n01440764 1 1 10 10", "listed again (first on line 2)"),
])
def test_a_malformed_loc_line_is_one_error_naming_its_line(tmp_path, line, words):
    path = tmp_path / "LOC_val_solution.csv"
    path.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 1 10 10\n" + line + "\n")
    with pytest.raises(InputError) as info:
        read_loc_solution(path)
    message = str(info.value)
    assert "line 3" in message and words in message and "\n" not in message


def test_loc_boxes_are_the_voc_boxes_of_the_same_numbers_and_take_their_size_from_the_image(kaggle):
    table = read_boxes(kaggle / "LOC_val_solution.csv")
    assert table.unsized
    with pytest.raises(InputError, match="give no image sizes"):
        table.boxes()
    xml = kaggle / "ILSVRC2012_val_00000001.xml"
    xml.write_text("<annotation><filename>ILSVRC2012_val_00000001</filename><size><width>40</width>"
                   "<height>30</height></size><object><name>n01440764</name><bndbox><xmin>10</xmin><ymin>5</ymin>"
                   "<xmax>29</xmax><ymax>24</ymax></bndbox></object></annotation>")
    voc = read_boxes(xml).lookup("ILSVRC2012_val_00000001.JPEG")
    source = open_source(kaggle / "val", boxes=kaggle / "LOC_val_solution.csv")
    first = source.records[0]
    assert first.relative == "ILSVRC2012_val_00000001.JPEG"
    assert first.box == voc  # the same box, the size read from the 40 x 30 image
    assert first.box is not None and first.box.features() == voc.features()  # type: ignore[union-attr]


def test_flat_val_folder_labelled_by_the_loc_boxes_wnids_through_the_synset_mapping(kaggle):
    classes = read_class_map(kaggle / "LOC_synset_mapping.txt")
    source = open_source(kaggle / "val", classes=classes, boxes=kaggle / "LOC_val_solution.csv")
    labels = {r.relative: r.label for r in source.records}
    assert labels["ILSVRC2012_val_00000001.JPEG"] == 0 and labels["ILSVRC2012_val_00000002.JPEG"] == 1
    assert labels["ILSVRC2012_val_00000005.JPEG"] is None  # no box, no label: it keeps none
    reasons = {s.path: s.reason for s in source.skipped}
    assert "several classes" in reasons["ILSVRC2012_val_00000003.JPEG"]
    assert labels.get("ILSVRC2012_val_00000004.JPEG") is None  # n09999999 is not a class: it keeps none


def _imagenet_space() -> ClassSpace:
    from biasprobe.models.imagenet import imagenet_class_names, imagenet_wnids

    return ClassSpace(tuple(imagenet_class_names()), tuple(imagenet_wnids()), model="an ImageNet-1k model")


def test_labels_file_loc_labels_the_flat_val_folder_against_the_models_classes(kaggle):
    space = _imagenet_space()
    assert space.wnids is not None
    mapping = [line.split()[0] for line in SYNSETS.splitlines()]
    assert [space.wnid_index(w) for w in mapping] == [0, 1, 2]  # LOC_synset_mapping's order is the model's
    source = open_source(kaggle / "val", class_space=space, labels=kaggle / "LOC_val_solution.csv")
    labels = {r.relative: (r.label, r.label_name) for r in source.records}
    assert labels["ILSVRC2012_val_00000001.JPEG"] == (0, space.names[0])
    assert labels["ILSVRC2012_val_00000002.JPEG"][0] == 1
    assert labels["ILSVRC2012_val_00000005.JPEG"] == (None, None)  # not in the file: kept, unlabelled, logged
    reasons = {s.path: s.reason for s in source.skipped}
    assert "several classes" in reasons["ILSVRC2012_val_00000003.JPEG"]
    assert "not one of the classes" in reasons["ILSVRC2012_val_00000004.JPEG"]
    assert source.labels_from is not None and "LOC_val_solution.csv" in source.labels_from


def test_labels_file_name_label_csv_takes_indices_and_wnids(kaggle):
    path = kaggle / "labels.csv"
    path.write_text("file_name,label\nILSVRC2012_val_00000001.JPEG,2\nILSVRC2012_val_00000002.JPEG,n01443537\n"
                    "ILSVRC2012_val_00000003,0\n")
    source = open_source(kaggle / "val", class_space=_imagenet_space(), labels=path)
    labels = {r.relative: r.label for r in source.records}
    assert labels["ILSVRC2012_val_00000001.JPEG"] == 2
    assert labels["ILSVRC2012_val_00000002.JPEG"] == 1
    assert labels["ILSVRC2012_val_00000003.JPEG"] == 0  # named without suffix: matched on the stem
    assert labels["ILSVRC2012_val_00000004.JPEG"] is None
    # without a model, a wnid needs the synset mapping
    plain = open_source(kaggle / "val", labels=path)
    assert "neither an integer" in {s.path: s.reason for s in plain.skipped}["ILSVRC2012_val_00000002.JPEG"]
    mapped = open_source(kaggle / "val", labels=path, classes=read_class_map(kaggle / "LOC_synset_mapping.txt"))
    assert {r.relative: r.label for r in mapped.records}["ILSVRC2012_val_00000002.JPEG"] == 1


@pytest.mark.parametrize(("body", "words"), [
    ("file_name,label\na.JPEG,1\nb.JPEG,\n", "line 3: empty label"),
    ("file_name,label\na.JPEG,1\nb.JPEG,2,3\n", "line 3: expected 2 fields"),
    ("file_name,label\na.JPEG,1\na,2\n", "line 3: 'a' is labelled '2', but '1' on line 2"),
    ("name,class\na.JPEG,1\n", "needs a header with file_name,label"),
])
def test_a_malformed_labels_file_is_one_error(tmp_path, body, words):
    path = tmp_path / "labels.csv"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        read_file_labels(path)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_labels_that_name_none_of_the_images_are_refused(kaggle):
    path = kaggle / "labels.csv"
    path.write_text("file_name,label\nsomething_else.JPEG,1\n")
    with pytest.raises(InputError, match="name none of the 5 images"):
        open_source(kaggle / "val", labels=path)


def test_kaggle_train_tree_gets_loc_boxes_and_a_disagreeing_label_is_skipped(kaggle):
    space = _imagenet_space()
    source = open_source(kaggle / "train", class_space=space, boxes=kaggle / "LOC_train_solution.csv",
                         labels=kaggle / "LOC_train_solution.csv")
    records = {r.relative: r for r in source.records}
    tench = records["n01440764/n01440764_10026.JPEG"]
    assert tench.label == 0 and tench.box is not None
    assert (tench.box.image_width, tench.box.image_height) == (50.0, 40.0)
    assert (tench.box.xmin, tench.box.width) == (2.0, 20.0)
    wrong = kaggle / "wrong.csv"
    wrong.write_text("file_name,label\nn01440764_10026.JPEG,5\nn01443537_1032.JPEG,1\n")
    source = open_source(kaggle / "train", class_space=space, labels=wrong)
    reasons = {s.path: s.reason for s in source.skipped}
    assert "its folder gives label 0" in reasons["n01440764/n01440764_10026.JPEG"]
    assert [r.relative for r in source.records] == ["n01443537/n01443537_1032.JPEG"]


def test_cli_refuses_a_missing_labels_file_in_one_line(kaggle):
    done = invariance_cli(kaggle / "val", kaggle / "x.parquet", "--labels", str(kaggle / "nope.csv"), timeout=60)
    assert "labels file not found" in one_line_error(done)


def test_cli_invariance_on_the_flat_val_folder_with_loc_labels_and_boxes(kaggle):
    """The real command with EfficientNet-Lite0 (an ImageNet-1k model): LOC labels and boxes."""
    import pandas as pd

    out = kaggle / "inv.parquet"
    done = invariance_cli(kaggle / "val", out, "--labels", str(kaggle / "LOC_val_solution.csv"),
                          "--boxes", str(kaggle / "LOC_val_solution.csv"), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "labels: 4 of 5 images named in" in done.stderr and "1 of 5 images are not in" in done.stderr
    table = pd.read_parquet(out)
    labels = dict(zip(table["path"], table["label"], strict=True))
    assert labels["ILSVRC2012_val_00000001.JPEG"] == 0 and labels["ILSVRC2012_val_00000002.JPEG"] == 1
    assert pd.isna(labels["ILSVRC2012_val_00000005.JPEG"])
    skipped = pd.read_parquet(kaggle / "inv.skipped.parquet")
    reasons = dict(zip(skipped["path"], skipped["reason"], strict=True))
    assert "several classes" in reasons["ILSVRC2012_val_00000003.JPEG"]
    assert "not one of the classes" in reasons["ILSVRC2012_val_00000004.JPEG"]
