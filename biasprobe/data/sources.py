"""Image sources: ImageFolder trees, flat folders, CSV manifests and the bundled photos.

``open_source(spec)`` turns what a user typed after ``--images`` into an ``ImageSource``: an
ordered list of ``ImageRecord`` plus the inputs it could not use, each with its reason.

- A folder whose top level holds image files is *flat*: every image below it, no labels.
- A folder whose top level holds only sub-folders is an *ImageFolder*: each sub-folder is a
  class. Labels come from ``--classes`` when given; otherwise integer folder names are the
  label itself and other names are numbered in sorted order (torchvision's ImageFolder).
- A ``.csv`` file is a manifest: ``path`` (relative to the CSV's folder), optional ``label``
  (an integer, or a folder name looked up in ``--classes``), optional box columns.
- ``builtin:photos`` is the nine real photos that ship inside scikit-image, scikit-learn and
  matplotlib (``biasprobe.data.photos``; its names are importable from here too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.core.skipped import Skipped
from biasprobe.data.boxes import Box, BoxTable, read_boxes
from biasprobe.data.classes import ClassMap
from biasprobe.data.loading import IMAGE_SUFFIXES, load_image
from biasprobe.data.photos import BUILTIN_PHOTOS, bundled_photo_paths

__all__ = ["BUILTIN_PHOTOS", "ImageRecord", "ImageSource", "attach_boxes", "bundled_photo_paths", "open_source"]


@dataclass(frozen=True)
class ImageRecord:
    """One input image: where it is, its label (class index) if known, and its box if known."""

    path: Path
    relative: str
    label: int | None = None
    label_name: str | None = None
    box: Box | None = None

    def load(self) -> tuple[Image.Image, str]:
        """Decode the image (docs/protocols.md section 1) and return it with its image id."""
        return load_image(self.path)


@dataclass
class ImageSource:
    """An ordered collection of images and the inputs that were skipped while listing them."""

    name: str
    kind: str
    records: list[ImageRecord]
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    @property
    def images_root(self) -> str:
        """Where the records' relative paths start: the folder, the manifest's folder, or
        ``builtin:photos`` (stage summaries record it so reports can find the images)."""
        if self.kind == "bundled":
            return BUILTIN_PHOTOS
        path = Path(self.name).resolve()
        return str(path.parent if self.kind == "manifest" else path)

    @property
    def has_labels(self) -> bool:
        return any(r.label is not None for r in self.records)

    def limited(self, limit: int | None) -> ImageSource:
        """The first ``limit`` images (all of them when ``limit`` is None)."""
        if limit is None:
            return self
        if limit < 1:
            raise InputError(f"--limit must be at least 1, got {limit}")
        return replace(self, records=self.records[:limit])


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _walk_files(root: Path) -> Iterator[Path]:
    """Every file below ``root`` in a stable (sorted) order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _label_for_folder(folder: str, folders: list[str], classes: ClassMap | None) -> tuple[int | None, str]:
    if classes is not None:
        return classes.index_of(folder), classes.entries.get(folder, (None, folder))[1]
    if all(f.isdigit() for f in folders):
        return int(folder), folder
    return sorted(folders).index(folder), folder


def _list_folder(root: Path, classes: ClassMap | None) -> ImageSource:
    top = sorted(root.iterdir())
    top_images = [p for p in top if p.is_file() and _is_image(p)]
    subdirs = [p for p in top if p.is_dir()]
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    if top_images or not subdirs:
        for path in _walk_files(root):
            rel = path.relative_to(root).as_posix()
            if _is_image(path):
                records.append(ImageRecord(path=path, relative=rel))
            else:
                skipped.append(Skipped(rel, f"not an image file (suffix {path.suffix or 'none'!r})"))
        return ImageSource(str(root), "flat", records, skipped)
    folders = [d.name for d in subdirs]
    for path in top:
        if path.is_file():
            skipped.append(Skipped(path.name, "file beside the class folders of an ImageFolder tree"))
    for folder in subdirs:
        label, name = _label_for_folder(folder.name, folders, classes)
        for path in _walk_files(folder):
            rel = path.relative_to(root).as_posix()
            if not _is_image(path):
                skipped.append(Skipped(rel, f"not an image file (suffix {path.suffix or 'none'!r})"))
            elif label is None:
                skipped.append(Skipped(rel, f"class folder {folder.name!r} is not in the classes file"))
            else:
                records.append(ImageRecord(path=path, relative=rel, label=label, label_name=name))
    return ImageSource(str(root), "imagefolder", records, skipped)


def _manifest_label(value: object, classes: ClassMap | None) -> tuple[int | None, str | None]:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None, None
    text = str(value)
    if classes is not None and text in classes.entries:
        index, name = classes.entries[text]
        return index, name
    try:
        index = int(float(text))
    except ValueError as exc:
        raise InputError(f"label {text!r} is neither an integer nor in the classes file") from exc
    return index, (classes.names().get(index, text) if classes else text)


def _read_manifest(path: Path, classes: ClassMap | None) -> ImageSource:
    try:
        table = pd.read_csv(path, dtype={"path": str, "label": str}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from exc
    if "path" not in table.columns:
        raise InputError(f"manifest {path} needs a 'path' column (and optionally label, xmin, ymin, xmax, ymax)")
    box_cols = ["xmin", "ymin", "xmax", "ymax", "image_width", "image_height"]
    has_boxes = all(c in table.columns for c in box_cols)
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    base = path.parent
    for row in table.to_dict("records"):
        rel = str(row["path"])
        file = Path(rel) if Path(rel).is_absolute() else base / rel
        try:
            label, name = _manifest_label(row.get("label"), classes)
        except InputError as exc:
            skipped.append(Skipped(rel, str(exc)))
            continue
        box = None
        if has_boxes and all(str(row[c]) != "" for c in box_cols):
            box = Box.from_corners(*(float(row[c]) for c in box_cols))
        records.append(ImageRecord(path=file, relative=rel, label=label, label_name=name, box=box))
    return ImageSource(str(path), "manifest", records, skipped)


def _bundled_source() -> ImageSource:
    records = [
        ImageRecord(path=p, relative=f"{name}{p.suffix}") for name, p in bundled_photo_paths().items()
    ]
    return ImageSource(BUILTIN_PHOTOS, "bundled", records)


def attach_boxes(source: ImageSource, boxes: str | Path | BoxTable) -> ImageSource:
    """Give each record without a box the box a boxes file holds for its relative path."""
    table = boxes if isinstance(boxes, BoxTable) else read_boxes(boxes)
    records = [
        r if r.box is not None else replace(r, box=table.lookup(r.relative)) for r in source.records
    ]
    return replace(source, records=records)


def open_source(
    spec: str | Path,
    *,
    classes: ClassMap | None = None,
    boxes: str | Path | None = None,
    limit: int | None = None,
) -> ImageSource:
    """Open a folder, a CSV manifest or ``builtin:photos`` as an ordered list of images."""
    if str(spec) == BUILTIN_PHOTOS:
        source = _bundled_source()
    else:
        path = Path(spec)
        if not path.exists():
            raise InputError(f"images not found: {path} (a folder, a .csv manifest or {BUILTIN_PHOTOS})")
        if path.is_dir():
            source = _list_folder(path, classes)
        elif path.suffix.lower() == ".csv":
            source = _read_manifest(path, classes)
        else:
            raise InputError(f"--images expects a folder, a .csv manifest or {BUILTIN_PHOTOS}, got the file {path}")
    if boxes is not None:
        source = attach_boxes(source, boxes)
    source = source.limited(limit)
    if not source.records:
        reasons = f" ({len(source.skipped)} inputs skipped, e.g. {source.skipped[0].path}: {source.skipped[0].reason})" if source.skipped else ""
        raise InputError(f"no images found in {spec}{reasons}")
    return source
