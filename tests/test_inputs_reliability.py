"""Inputs that can never silently give a wrong answer, hang or crash (issues 13 and 15):
boxes that match nothing, hidden and system folders, special files, oversized files, names
that are not UTF-8, images that explode when resized (docs/reliability.md)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli import invariance_cli, one_line_error, run_cli
from PIL import Image

from biasprobe.core.errors import ImageLoadError, InputError
from biasprobe.data.boxes import read_boxes
from biasprobe.data.files import MAX_FILE_BYTES_ENV, file_problem, read_bounded
from biasprobe.data.loading import load_image
from biasprobe.data.names import escape_name, fs_path, name_bytes, printable
from biasprobe.data.photos import bundled_photo_paths
from biasprobe.data.sources import attach_boxes, open_source
from biasprobe.data.transforms import MAX_RESIZED_PIXELS, embed_view, resize_longer, resize_shorter

needs_posix = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev/zero are POSIX")
CAFE = b"caf\xe9.png"  # Latin-1 bytes: not UTF-8


def _copy(photo: str, dest: Path | str) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundled_photo_paths()[photo], dest)
    return dest


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of three bundled photos, for the score command."""
    from biasprobe.cli import main

    root = tmp_path_factory.mktemp("index")
    for name in ("astronaut", "rocket", "china"):
        _copy(name, root / "train" / f"{name}.png")
    assert main(["index", "build", "--images", str(root / "train"), "--model", "efficientnet_lite0",
                 "--out", str(root / "idx"), "--threads", "1"]) == 0  # fmt: skip
    return root / "idx"


# -- boxes that match nothing (issue 15) --------------------------------------------------------


def _two_photos(folder: Path) -> Path:
    _copy("coffee", folder / "coffee.png")
    _copy("chelsea", folder / "chelsea.png")
    return folder


def _boxes_csv(path: Path, names: list[str]) -> Path:
    rows = "".join(f"{n},10,10,100,100,600,400\n" for n in names)
    path.write_text("path,xmin,ymin,xmax,ymax,image_width,image_height\n" + rows)
    return path


def test_boxes_matching_no_image_are_refused_and_matches_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images = _two_photos(tmp_path / "imgs")
    source = open_source(images)
    with pytest.raises(InputError, match=r"the boxes in .*other\.csv match none of the 2 images .* e\.g\. 'photo_1\.png'"):
        attach_boxes(source, _boxes_csv(tmp_path / "other.csv", ["photo_1.png", "photo_2.png"]))
    with caplog.at_level(logging.INFO):
        with_boxes = attach_boxes(source, _boxes_csv(tmp_path / "one.csv", ["coffee.png"]))
    assert [r.box is not None for r in with_boxes] == [False, True]
    assert "boxes: 1 of 2 images have a box in" in caplog.text


def test_cli_invariance_and_index_build_refuse_boxes_matching_nothing(tmp_path: Path) -> None:
    images = _two_photos(tmp_path / "imgs")
    boxes = _boxes_csv(tmp_path / "b.csv", ["ILSVRC2012_val_00000001.JPEG"])
    line = one_line_error(invariance_cli(images, tmp_path / "x.parquet", "--boxes", str(boxes)))
    assert "match none of the 2 images" in line and not (tmp_path / "x.parquet").exists()
    line = one_line_error(run_cli("index", "build", "--model", "efficientnet_lite0", "--images", str(images),
                                "--boxes", str(boxes), "--out", str(tmp_path / "idx"), "--threads", "1"))  # fmt: skip
    assert "match none of the 2 images" in line and not (tmp_path / "idx" / "meta.json").exists()


def test_cli_score_refuses_boxes_matching_nothing(tmp_path: Path, small_index: Path) -> None:
    images = _two_photos(tmp_path / "imgs")
    boxes = _boxes_csv(tmp_path / "b.csv", ["elsewhere/coffee_1.png"])
    line = one_line_error(run_cli("score", "--index", str(small_index), "--images", str(images), "--boxes", str(boxes),
                                "--out", str(tmp_path / "s.parquet"), "--k", "1", "--threads", "1"))  # fmt: skip
    assert "match none of the 2 images" in line and not (tmp_path / "s.parquet").exists()


# -- hidden and system folders are not classes (issue 13) ----------------------------------------


def test_cli_macosx_and_git_folders_do_not_renumber_integer_classes(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    _copy("coffee", images / "967" / "coffee.png")  # espresso, as Lite0 answers
    _copy("coffee", images / "__MACOSX" / "967" / "._coffee.png")
    (images / ".git").mkdir()
    (images / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    done = invariance_cli(images, tmp_path / "x.parquet")
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(tmp_path / "x.parquet")
    assert table.label.tolist() == [967] and table.correct0.tolist() == [True]  # was label 1 (sorted numbering)
    skipped = pd.read_parquet(tmp_path / "x.skipped.parquet")
    assert dict(zip(skipped.path, skipped.reason, strict=True)) == {
        ".git/": "hidden entry (its name starts with '.'), not read",
        "__MACOSX/": "system entry, not read (macOS archive metadata)",
    }


def test_hidden_and_system_entries_are_skipped_everywhere(tmp_path: Path) -> None:
    _copy("coffee", tmp_path / "0" / "a.png")
    _copy("coffee", tmp_path / "0" / "._a.png")  # AppleDouble beside the class folders' images
    _copy("coffee", tmp_path / "._top.png")  # made the tree "flat" before
    (tmp_path / "0" / "Thumbs.db").write_bytes(b"\0" * 10)
    _copy("coffee", tmp_path / "0" / "@eaDir" / "a.png" / "SYNOFILE_THUMB_M.jpg")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    src = open_source(tmp_path)
    assert src.kind == "imagefolder" and [(r.relative, r.label) for r in src] == [("0/a.png", 0)]
    assert [s.path for s in src.skipped] == [".DS_Store", "._top.png", "0/._a.png", "0/@eaDir/", "0/Thumbs.db"]


# -- special files: FIFOs, devices, oversized files (issue 13) -----------------------------------


@needs_posix
def test_special_files_are_listed_as_skipped_never_opened(tmp_path: Path) -> None:
    _copy("coffee", tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    src = open_source(tmp_path)
    assert [r.relative for r in src] == ["a.png"]
    assert dict((s.path, s.reason) for s in src.skipped) == {
        "gone.png": "broken symbolic link",
        "pipe.jpg": "not a regular file: a FIFO (named pipe), not read",
        "zero.png": "not a regular file: a symbolic link to a character device, not read",
        "loop/": "symbolic link to a folder, not followed",
    }


@needs_posix
def test_reading_refuses_special_files_that_appear_after_listing(tmp_path: Path) -> None:
    path = _copy("coffee", tmp_path / "a.png")
    record = open_source(tmp_path).records[0]
    path.unlink()
    os.mkfifo(path)  # swapped for a FIFO between listing and reading: must not block
    started = time.monotonic()
    with pytest.raises(ImageLoadError, match="a FIFO"):
        record.load()
    path.unlink()
    path.symlink_to("/dev/zero")
    with pytest.raises(ImageLoadError, match="a symbolic link to a character device"):
        record.load()
    assert time.monotonic() - started < 5


@needs_posix
def test_cli_invariance_skips_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    _copy("coffee", images / "coffee.png")
    os.mkfifo(images / "stuck.jpg")
    (images / "endless.png").symlink_to("/dev/zero")
    done = invariance_cli(images, tmp_path / "x.parquet", timeout=120)
    assert done.returncode == 0, done.stderr
    skipped = pd.read_parquet(tmp_path / "x.skipped.parquet")
    assert sorted(skipped.path) == ["endless.png", "stuck.jpg"]
    assert all("not a regular file" in r for r in skipped.reason)


def test_files_over_the_size_limit_are_skipped_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = _copy("coffee", tmp_path / "big.png")
    _copy("rocket", tmp_path / "small.jpg")
    limit = big.stat().st_size - 1
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, str(limit))
    src = open_source(tmp_path)
    assert [r.relative for r in src] == ["small.jpg"]
    assert src.skipped[0].path == "big.png" and f"limit ({MAX_FILE_BYTES_ENV})" in src.skipped[0].reason
    assert file_problem(big, limit=limit + 1) is None
    with pytest.raises(ImageLoadError, match="over the"):
        read_bounded(big, name="big.png", limit=limit)  # checked again when read
    assert read_bounded(big, name="big.png", limit=limit + 1) == big.read_bytes()
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "lots")
    with pytest.raises(InputError, match="must be a whole number of bytes"):
        open_source(tmp_path)


# -- file names that are not UTF-8 (issue 13) -----------------------------------------------------


def test_names_are_escaped_losslessly() -> None:
    assert escape_name("chelsea.png") == "chelsea.png" and escape_name("café/ü.png") == "café/ü.png"
    assert escape_name(CAFE) == "caf\\xe9.png" and escape_name(os.fsdecode(CAFE)) == "caf\\xe9.png"
    assert escape_name(b"a\\xe9.png") == "a\\\\xe9.png"  # a real backslash is doubled: no collision
    for raw in (CAFE, b"a\\xe9.png", b"\xff\xfe\\", "ü".encode()):
        assert name_bytes(escape_name(raw)) == raw
    assert printable("ok") == "ok" and printable(os.fsdecode(CAFE)) == "caf\\xe9.png"
    assert fs_path("/r", escape_name(CAFE)) == Path(os.fsdecode(b"/r/" + CAFE))


@needs_posix
def test_non_utf8_names_are_table_text_and_still_open(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    _copy("coffee", os.fsdecode(root + b"/" + CAFE))
    _copy("chelsea", os.fsdecode(root + b"/d\xfcr/x.png"))
    Path(os.fsdecode(root + b"/notes\xff.txt")).write_text("x")
    src = open_source(tmp_path)
    assert [r.relative for r in src] == ["caf\\xe9.png", "d\\xfcr/x.png"]
    assert [s.path for s in src.skipped] == ["notes\\xff.txt"]
    assert src.records[0].file.endswith("caf\\xe9.png")
    img, _ = src.records[0].load()
    assert img.size == (600, 400)
    assert fs_path(tmp_path, src.records[0].relative) == src.records[0].path


@needs_posix
def test_cli_invariance_writes_non_utf8_names(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    _copy("coffee", os.fsdecode(os.fsencode(images) + b"/" + CAFE))
    _copy("chelsea", images / "chelsea.png")
    Path(os.fsdecode(os.fsencode(images) + b"/notes\xff.txt")).write_text("x")
    done = invariance_cli(images, tmp_path / "x.parquet")
    assert done.returncode == 0, done.stderr  # was a UnicodeEncodeError traceback after the work
    table = pd.read_parquet(tmp_path / "x.parquet")
    assert sorted(table.path) == ["caf\\xe9.png", "chelsea.png"]
    assert pd.read_parquet(tmp_path / "x.skipped.parquet").path.tolist() == ["notes\\xff.txt"]
    again = invariance_cli(images, tmp_path / "x.parquet")  # a re-run finds the finished table
    assert again.returncode == 0, again.stderr


@needs_posix
def test_cli_score_writes_non_utf8_names(tmp_path: Path, small_index: Path) -> None:
    images = tmp_path / "imgs"
    _copy("coffee", os.fsdecode(os.fsencode(images) + b"/" + CAFE))
    done = run_cli("score", "--index", str(small_index), "--images", str(images), "--out", str(tmp_path / "s.parquet"),
                "--k", "1", "--threads", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pd.read_parquet(tmp_path / "s.parquet").path.tolist() == ["caf\\xe9.png"]


@needs_posix
def test_cli_index_build_writes_non_utf8_names(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    _copy("coffee", os.fsdecode(os.fsencode(images) + b"/" + CAFE))
    _copy("chelsea", images / "chelsea.png")
    _copy("rocket", images / "rocket.jpg")
    done = run_cli("index", "build", "--model", "efficientnet_lite0", "--images", str(images), "--out", str(tmp_path / "idx"),
                "--threads", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "caf\\xe9.png" in pd.read_parquet(tmp_path / "idx" / "ids.parquet").path.tolist()


# -- images that explode when resized (issue 13) -------------------------------------------------


def _strip(path: Path, size: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)
    return path


def test_resizes_beyond_the_pixel_budget_are_refused_before_allocating() -> None:
    strip = Image.new("RGB", (1, 20000))
    started = time.monotonic()
    with pytest.raises(ImageLoadError, match=r"1 x 20000 pixels resized so its shorter side is 256 would be 256 x 5120000 \(1310.7 megapixels"):
        resize_shorter(strip, 256)
    with pytest.raises(ImageLoadError, match="too elongated"):
        embed_view(strip, input_size=224, crop_pct=0.875)
    assert time.monotonic() - started < 1
    assert resize_longer(strip, 256).size == (1, 256)  # never larger than L x L
    assert resize_shorter(Image.new("RGB", (10, 2000)), 256).size == (256, 51200)  # 13 megapixels: fine
    assert 256 * 51200 < MAX_RESIZED_PIXELS < 256 * 5120000


def test_cli_invariance_skips_an_elongated_strip_quickly(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    _copy("coffee", images / "coffee.png")
    strip = _strip(images / "strip.png", (8, 200_000))  # crop resizes it to 225 x 5,625,000 (S + m = 225)
    assert strip.stat().st_size < 200_000
    code = ("import resource, sys\nfrom biasprobe.cli import main\ncode = main(sys.argv[1:])\n"
            "peak = max(resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))\n"
            "print('peak_kib', peak)\nsys.exit(code)\n")  # fmt: skip
    argv = ["invariance", "--model", "efficientnet_lite0", "--images", str(images), "--protocol", "crop",
            "--max-shift", "1", "--out", str(tmp_path / "x.parquet"), "--threads", "1"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    skipped = pd.read_parquet(tmp_path / "x.skipped.parquet")
    assert skipped.path.tolist() == ["strip.png"] and "too elongated" in skipped.reason[0]
    peak_gib = int(done.stdout.split("peak_kib")[-1].split()[0]) / 2**20
    assert peak_gib < 2.5  # about 1.3 GiB for the model and coffee; the resized strip alone would be 3.8 GB


def test_decompression_bombs_are_load_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _strip(tmp_path / "bomb.png", (100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(path)


def test_voc_boxes_without_names_still_attach(tmp_path: Path) -> None:
    xml = tmp_path / "a.xml"
    xml.write_text("<annotation><filename>a</filename><size><width>10</width><height>10</height></size>"
                   "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>")  # fmt: skip
    table = read_boxes(xml)
    assert table.lookup("x/a.png") is not None and table.name_of("x/a.png") is None


def test_every_test_named_in_reliability_md_exists() -> None:
    """docs/reliability.md backs each row with tests; a renamed test must not leave a dead row."""
    import ast
    import re

    root = Path(__file__).resolve().parent.parent
    named: list[tuple[str, str]] = []
    for line in (root / "docs" / "reliability.md").read_text().splitlines():
        current = None
        for file, test in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", line):
            current = file or current
            assert current, f"{test} names no file: {line}"
            named.append((current, test))
    assert len(named) > 20
    defined: dict[str, set[str]] = {}
    for file, test in named:
        if file not in defined:
            tree = ast.parse((root / file).read_text())
            defined[file] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert test in defined[file], f"docs/reliability.md names {file}::{test}, which does not exist"
