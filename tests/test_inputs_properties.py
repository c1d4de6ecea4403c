"""Property-based checks of the input layer: decoding never fails with anything but
``ImageLoadError``, listing accounts for every file exactly once, names round-trip, and
label plans never hand a model labels it cannot have."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from biasprobe.core.errors import ImageLoadError, InputError
from biasprobe.data.labels import ClassSpace, Labeller, is_wnid
from biasprobe.data.loading import decode_rgb
from biasprobe.data.names import escape_name, fs_path, name_bytes
from biasprobe.data.sources import open_source

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "La", "RGBa", "PA", "I;16", "I;16B", "I", "F", "CMYK", "YCbCr", "LAB", "HSV"]
FORMATS = ["PNG", "GIF", "BMP", "TIFF", "WEBP", "JPEG", "PPM", "ICO"]
PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def encoded_images(draw: st.DrawFn) -> tuple[bytes, tuple[int, int], bool]:
    """Bytes of a small image of a random mode in a random format, perhaps damaged."""
    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS))
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    length = len(Image.new(mode, size).tobytes())
    img = Image.frombytes(mode, size, draw(st.binary(min_size=length, max_size=length)))
    if mode == "P" and draw(st.booleans()):
        img.info["transparency"] = draw(st.integers(0, 255))
    buffer = io.BytesIO()
    try:
        img.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)
    data = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    return data, size, damage == "none" and fmt == "PNG"


@PROPERTY
@given(encoded_images())
def test_decode_gives_rgb_or_an_image_load_error(case: tuple[bytes, tuple[int, int], bool]) -> None:
    data, size, must_decode = case
    try:
        img = decode_rgb(data, name="x")
    except ImageLoadError:
        assert not must_decode, "an undamaged PNG must decode"
        return
    assert img.mode == "RGB" and min(img.size) >= 1
    if must_decode:
        assert img.size == size
        assert np.asarray(img).dtype == np.uint8


@PROPERTY
@given(st.binary(max_size=200))
def test_decode_of_arbitrary_bytes_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(ImageLoadError):
        assert decode_rgb(data).mode == "RGB"


NAME_BYTES = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@PROPERTY
@given(NAME_BYTES)
def test_escaped_names_round_trip_and_are_utf8(raw: bytes) -> None:
    text = escape_name(raw)
    text.encode("utf-8")  # always table text
    assert name_bytes(text) == raw
    assert fs_path("/r", text) == Path(os.fsdecode(b"/r/" + raw))
    decoded = raw.decode("utf-8", "replace")
    if "\\" not in decoded and "\ufffd" not in decoded:
        assert text == decoded


FOLDERS = [b"0", b"1", b"12", b"cat", b"n01440764", b".git", b"__MACOSX", b"@eaDir", b"caf\xe9", b"sub"]
FILES = [b"a.png", b"b.JPG", b"c.txt", b"noext", b".DS_Store", b"._a.png", b"Thumbs.db", b"\xff.png", b"d.gif"]
TREES = st.lists(
    st.tuples(st.lists(st.sampled_from(FOLDERS), max_size=3), st.sampled_from(FILES), st.sampled_from(["png", "junk", "fifo"])),
    min_size=1, max_size=12,
)  # fmt: skip


def _make_tree(root: bytes, entries: list[tuple[list[bytes], bytes, str]]) -> None:
    png = io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, format="PNG")
    for folders, name, kind in entries:
        folder = os.path.join(root, *folders) if folders else root
        path = os.path.join(folder, name)
        try:
            os.makedirs(folder, exist_ok=True)
            if os.path.lexists(path):
                continue
            if kind == "fifo" and hasattr(os, "mkfifo"):
                os.mkfifo(path)
            else:
                with open(path, "wb") as handle:
                    handle.write(png.getvalue() if kind == "png" else b"not an image")
        except (FileExistsError, NotADirectoryError):
            continue  # a file where a folder was asked for, or the reverse


def _files_on_disk(root: bytes) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            found.append(escape_name(os.path.relpath(os.path.join(dirpath, name), root)))
    return found


@PROPERTY
@given(TREES)
def test_every_file_of_a_tree_is_a_record_or_skipped_exactly_once(entries: list[tuple[list[bytes], bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = os.fsencode(tmp)
        _make_tree(root, entries)
        try:
            source = open_source(tmp)
        except InputError as exc:
            assert "\n" not in str(exc) and "no images found" in str(exc)
            return
        listed = [r.relative for r in source.records] + [s.path for s in source.skipped if not s.path.endswith("/")]
        folders = [s.path for s in source.skipped if s.path.endswith("/")]
        assert len(listed) == len(set(listed)), "a file listed twice"
        for rel in _files_on_disk(root):
            below_skipped = any(rel.startswith(folder) for folder in folders)
            assert (rel in listed) != below_skipped, rel
        for record in source.records:
            assert fs_path(tmp, record.relative) == record.path and record.path.is_file()
            record.relative.encode("utf-8")
        for skipped in source.skipped:
            skipped.path.encode("utf-8")
            skipped.reason.encode("utf-8")


FOLDER_NAMES = st.lists(st.sampled_from(["0", "3", "17", "cat", "dog", "n01440764", "n07920052", "n09999999", "z"]),
                        min_size=1, max_size=6, unique=True)  # fmt: skip


@PROPERTY
@given(FOLDER_NAMES, st.integers(1, 20), st.booleans())
def test_folder_label_plans_never_give_a_label_that_cannot_be_right(folders: list[str], classes: int, imagenet: bool) -> None:
    if imagenet:
        wnids = ["n01440764", "n07920052", *(f"n1{i:07d}" for i in range(classes))][:classes]
        space = ClassSpace(tuple(f"c{i}" for i in range(classes)), tuple(wnids))
    else:
        space = ClassSpace(tuple(f"c{i}" for i in range(classes)))
    try:
        plan = Labeller.create(None, space).folder_labels(folders)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    for folder, (index, _) in plan.labels.items():
        if folder.isdigit():
            assert (all(f.isdigit() for f in folders) and index == int(folder)) or len(folders) == classes
        elif is_wnid(folder) and imagenet and all(is_wnid(f) for f in folders):
            assert space.wnids is not None and space.wnids[index] == folder
        else:
            assert len(folders) == classes and 0 <= index < classes  # sorted numbering fits the model exactly
    assert set(plan.labels) | set(plan.reasons) == set(folders)


@pytest.mark.parametrize("raw", [b"a\\b", b"\\x41", b"\xc3", b"\xed\xa0\x80"])
def test_escape_examples_round_trip(raw: bytes) -> None:
    assert name_bytes(escape_name(raw)) == raw
