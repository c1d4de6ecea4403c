"""Image sources: ImageFolder trees, flat folders, CSV manifests and the bundled photos.

``open_source(spec)`` turns what a user typed after ``--images`` into an ``ImageSource``: an
ordered list of ``ImageRecord`` plus the inputs it could not use, each with its reason.

- A folder whose top level holds image files is *flat*: every image below it, no labels.
- A folder whose top level holds only sub-folders is an *ImageFolder*: each sub-folder is a
  class. Labels follow ``data.labels``: ``--classes`` when given; otherwise integer folder
  names are the label, ImageNet wnids the model's class for them, and other names are
  numbered in sorted order (torchvision's ImageFolder) when that can match the model.
- A ``.csv`` file is a manifest: ``path`` (relative to the CSV's folder), optional ``label``
  (an integer, a folder name looked up in ``--classes``, or a wnid), optional box columns.
- ImageNet as Kaggle lays it out (``data.imagenet_layout``): ``train/`` is an ImageFolder tree of
  wnids; ``val/`` is flat, labelled by ``labels=`` (``--labels``: ``LOC_val_solution.csv`` or a
  ``file_name,label`` CSV, matched by file name without suffix) or by the wnids of its LOC boxes.
- ``builtin:photos`` is the nine real photos that ship inside scikit-image, scikit-learn and
  matplotlib (``biasprobe.data.photos``; its names are importable from here too).

Folders are listed safely (``data.files``): hidden and system entries are skipped, only
regular files become records, symbolic links to folders below the top level are not followed,
and every entry not used is a ``Skipped`` row (a skipped folder is one row, its path ending in
``/``). Relative paths are table text (``data.names``): non-UTF-8 bytes written ``\\xNN``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pandas as pd
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.core.skipped import Skipped
from biasprobe.data.boxes import Box, BoxTable, read_boxes
from biasprobe.data.classes import ClassMap
from biasprobe.data.files import file_problem, ignored_reason
from biasprobe.data.imagenet_layout import FileLabels, file_key, read_file_labels
from biasprobe.data.labels import ClassSpace, Labeller
from biasprobe.data.loading import IMAGE_SUFFIXES, load_image
from biasprobe.data.names import escape_name, printable
from biasprobe.data.photos import BUILTIN_PHOTOS, bundled_photo_paths
from biasprobe.data.sampling import sample_positions

__all__ = ["BUILTIN_PHOTOS", "ImageRecord", "ImageSource", "attach_boxes", "attach_labels", "bundled_photo_paths",
           "open_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRecord:
    """One input image: where it is, its label (class index) if known, and its box if known.

    ``relative`` is the path the tables show: below the folder (non-UTF-8 bytes written
    ``\\xNN``, ``data.names``), as the manifest wrote it, or the bundled photo's file name.
    """

    path: Path
    relative: str
    label: int | None = None
    label_name: str | None = None
    box: Box | None = None

    def load(self) -> tuple[Image.Image, str]:
        """Decode the image (docs/protocols.md section 1) and return it with its image id."""
        return load_image(self.path)

    @property
    def file(self) -> str:
        """The absolute path of the file as table text (``data.names``)."""
        return escape_name(Path(self.path).resolve())


@dataclass
class ImageSource:
    """An ordered collection of images and the inputs that were skipped while listing them.

    ``labels_from`` says in one line how labels were assigned (None without labels);
    ``selection`` which of the listed images were kept (None: all of them).
    """

    name: str
    kind: str
    records: list[ImageRecord]
    skipped: list[Skipped] = field(default_factory=list)
    labels_from: str | None = None
    selection: str | None = None

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
        return replace(self, records=self.records[:limit], selection=f"the first {limit}")

    def sampled(self, n: int | None, seed: int = 0) -> ImageSource:
        """A seeded sample of ``n`` images (all of them when ``n`` is None), stratified by label
        when there are labels, in the source's order (``data.sampling``): the same seed and files
        give the same sample whatever order the source lists them in."""
        if n is None:
            return self
        if n < 1:
            raise InputError(f"--sample must be at least 1, got {n}")
        if seed < 0:
            raise InputError(f"--sample needs a --seed of 0 or more, got {seed}")
        strata = [r.label for r in self.records] if self.has_labels else [None] * len(self.records)
        positions = sample_positions([r.path for r in self.records], strata, n, seed)
        records = [self.records[i] for i in positions]
        classes = len(set(strata)) if self.has_labels else 0
        log.info("--sample %d (seed %d): %d of %d images%s", n, seed, len(records), len(self.records),
                 f", stratified by label over {classes} labels" if classes else "")  # fmt: skip
        return replace(self, records=records, selection=f"a sample of {n}, seed {seed}")


def _is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _not_image(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    return f"not an image file (suffix {printable(suffix) or 'none'!r})"


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


@dataclass
class _Listing:
    """What a walk found: usable files (absolute path, relative text) and skipped entries."""

    root: Path
    files: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        return escape_name(path.relative_to(self.root).as_posix())

    def file(self, path: Path, name: str) -> None:
        """A file entry: usable when it has an image suffix and is a regular file (after links)."""
        rel = self.relative(path)
        problem = _not_image(name) if not _is_image(name) else file_problem(path)
        if problem is None:
            self.files.append((path, rel))
        else:
            self.skipped.append(Skipped(rel, problem))

    def walk(self, folder: Path) -> None:
        """A folder's files in sorted order, then its sub-folders in sorted order (os.walk's
        top-down order), skipping hidden and system entries and links to folders."""
        try:
            entries = _scan(folder)
        except OSError as exc:
            self.skipped.append(Skipped(self.relative(folder) + "/", f"cannot list the folder: {exc.strerror or exc}"))
            return
        subdirs: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            is_dir = _is_dir(entry)
            reason = ignored_reason(entry.name)
            if reason is not None:
                self.skipped.append(Skipped(self.relative(path) + ("/" if is_dir else ""), reason))
            elif is_dir and entry.is_symlink():
                self.skipped.append(Skipped(self.relative(path) + "/", "symbolic link to a folder, not followed"))
            elif is_dir:
                subdirs.append(path)
            else:
                self.file(path, entry.name)
        for sub in subdirs:
            self.walk(sub)


def _list_folder(root: Path, labeller: Labeller) -> ImageSource:
    try:
        top = [e for e in _scan(root) if ignored_reason(e.name) is None]
    except OSError as exc:
        raise InputError(f"cannot list {printable(str(root))}: {exc.strerror or exc}") from exc
    has_images = any(e.is_file() and _is_image(e.name) for e in top)
    class_dirs = [Path(e.path) for e in top if _is_dir(e)]
    listing = _Listing(root)
    if has_images or not class_dirs:
        listing.walk(root)
        flat = [ImageRecord(path=path, relative=rel) for path, rel in listing.files]
        return ImageSource(str(root), "flat", flat, listing.skipped)
    for entry in _scan(root):
        path = Path(entry.path)
        reason = ignored_reason(entry.name)
        if reason is not None:
            listing.skipped.append(Skipped(listing.relative(path) + ("/" if _is_dir(entry) else ""), reason))
        elif not _is_dir(entry):
            problem = file_problem(path) if not entry.is_file() else None
            listing.skipped.append(Skipped(listing.relative(path), problem or "file beside the class folders of an ImageFolder tree"))
    plan = labeller.folder_labels([listing.relative(d) for d in class_dirs])
    log.log(plan.level, "%s", plan.how)
    records: list[ImageRecord] = []
    for folder in class_dirs:
        name = listing.relative(folder)
        before = len(listing.files)
        listing.walk(folder)
        found, listing.files = listing.files[before:], listing.files[:before]
        entry_label = plan.labels.get(name)
        for path, rel in found:
            if entry_label is None:
                listing.skipped.append(Skipped(rel, plan.reasons[name]))
            else:
                records.append(ImageRecord(path=path, relative=rel, label=entry_label[0], label_name=entry_label[1]))
    return ImageSource(str(root), "imagefolder", records, listing.skipped, labels_from=plan.how)


def _read_manifest(path: Path, labeller: Labeller) -> ImageSource:
    try:
        table = pd.read_csv(path, dtype={"path": str, "label": str}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read manifest {path}: {printable(str(exc))}") from exc
    if "path" not in table.columns:
        raise InputError(f"manifest {path} needs a 'path' column (and optionally label, xmin, ymin, xmax, ymax)")
    box_cols = ["xmin", "ymin", "xmax", "ymax", "image_width", "image_height"]
    has_boxes = all(c in table.columns for c in box_cols)
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    base = path.parent
    for row in table.to_dict("records"):
        rel = printable(str(row["path"]))
        file = Path(rel) if Path(rel).is_absolute() else base / rel
        problem = file_problem(file) if os.path.lexists(file) else None  # a missing file fails when read
        if problem is not None:
            skipped.append(Skipped(rel, problem))
            continue
        try:
            label, name = _manifest_label(row.get("label"), labeller)
        except InputError as exc:
            skipped.append(Skipped(rel, str(exc)))
            continue
        box = None
        if has_boxes and all(str(row[c]) != "" for c in box_cols):
            box = Box.from_corners(*(float(row[c]) for c in box_cols))
        records.append(ImageRecord(path=file, relative=rel, label=label, label_name=name, box=box))
    labels_from = f"labels: the manifest's label column ({path.name})" if "label" in table.columns else None
    return ImageSource(str(path), "manifest", records, skipped, labels_from=labels_from)


def _manifest_label(value: object, labeller: Labeller) -> tuple[int | None, str | None]:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None, None
    return labeller.label_of(str(value))


def _bundled_source() -> ImageSource:
    records = [
        ImageRecord(path=p, relative=f"{name}{p.suffix}") for name, p in bundled_photo_paths().items()
    ]
    return ImageSource(BUILTIN_PHOTOS, "bundled", records)


def attach_boxes(source: ImageSource, boxes: str | Path | BoxTable, *, labeller: Labeller | None = None) -> ImageSource:
    """Give each record without a box the box a boxes file holds for it (by relative path,
    else by file stem); with a ``labeller``, a record without a label gets the one its boxes'
    Pascal VOC object name gives (ImageNet's validation layout: the name is the wnid).

    Refuses (``InputError``) a boxes file that matches none of the source's images, and logs
    how many it matched, so pose columns never vanish silently. A Kaggle LOC file's box gets its
    image's size from the image file; an image whose size cannot be read, or (with a labeller) whose
    LOC boxes name several classes, is skipped with its reason.
    """
    table = boxes if isinstance(boxes, BoxTable) else read_boxes(boxes)
    records: list[ImageRecord] = []
    skipped = list(source.skipped)
    matched = labelled = 0
    unusable: list[str] = []
    for record in source.records:
        box = table.lookup(record.relative)
        if box is not None:
            matched += 1
            if record.box is None:
                if table.unsized:
                    try:
                        with Image.open(record.path) as img:
                            box = box.with_image_size(*img.size)
                    except (OSError, ValueError, Image.DecompressionBombError) as exc:
                        skipped.append(Skipped(record.relative, f"cannot read the image's size for its box: {printable(str(exc))}"))
                        continue
                record = replace(record, box=box)
        if labeller is not None and record.label is None:
            problem = table.name_problem(record.relative)
            if problem is not None:
                skipped.append(Skipped(record.relative, f"no label: {problem}"))
                continue
        object_name = table.name_of(record.relative) if labeller is not None else None
        if labeller is not None and record.label is None and object_name:
            try:
                label, label_name = labeller.label_of(object_name)
            except InputError:
                unusable.append(object_name)
            else:
                record = replace(record, label=label, label_name=label_name)
                labelled += 1
        records.append(record)
    count = len(source.records)
    if count and not matched:
        first = source.records[0].relative
        keys = table.example_keys()
        raise InputError(
            f"the boxes in {table.source} match none of the {count} images of {source.name}: a box is found by "
            f"the image's path below --images (e.g. {first!r}) or its file name without suffix "
            f"(e.g. {PurePosixPath(first).stem!r}), and the boxes file names e.g. {keys}"
        )
    log.info("boxes: %d of %d images have a box in %s%s", matched, count, table.source,
             f"; {labelled} labelled by their boxes' object names" if labelled else "")  # fmt: skip
    if unusable:
        log.warning("boxes: %d images have object names that are not classes (e.g. %r): they keep no label",
                    len(unusable), unusable[0])  # fmt: skip
    labels_from = source.labels_from
    if labelled and labels_from is None:
        labels_from = f"labels: the object names of the boxes in {table.source}"
    return replace(source, records=records, skipped=skipped, labels_from=labels_from)


def attach_labels(source: ImageSource, labels: str | Path | FileLabels, labeller: Labeller) -> ImageSource:
    """Label each image by its file name (without folder and suffix) from a labels file
    (``data.imagenet_layout.read_file_labels``: a Kaggle LOC solution file or ``file_name,label``).

    Nothing is silently wrong or dropped: a label that is not a class, an image the file names
    with no single class, or an image whose label from its folder differs from the file's is
    skipped with its reason; images the file does not name keep no label (one warning with the
    count); a file that names none of the images is refused.
    """
    table = labels if isinstance(labels, FileLabels) else read_file_labels(labels)
    records: list[ImageRecord] = []
    skipped = list(source.skipped)
    matched = 0
    missing: list[str] = []
    for record in source.records:
        key = file_key(record.relative)
        text = table.texts.get(key)
        problem = table.problems.get(key)
        if text is None and problem is None:
            missing.append(record.relative)
            records.append(record)
            continue
        matched += 1
        if problem is not None:
            skipped.append(Skipped(record.relative, f"no label: {problem}"))
            continue
        assert text is not None
        try:
            label, name = labeller.label_of(text)
        except InputError as exc:
            skipped.append(Skipped(record.relative, f"label from {table.source.name}: {exc}"))
            continue
        if record.label is not None and record.label != label:
            skipped.append(Skipped(record.relative, f"its folder gives label {record.label}, but {table.source.name} "
                                                    f"gives {printable(text)} (label {label})"))
            continue
        records.append(replace(record, label=label, label_name=name))
    if source.records and not matched:
        first = source.records[0].relative
        example = next(iter(table.texts), next(iter(table.problems), ""))
        raise InputError(
            f"the labels in {table.source} name none of the {len(source.records)} images of {source.name}: an image "
            f"is found by its file name without folder and suffix (e.g. {file_key(first)!r}), and the file names "
            f"e.g. {example!r}"
        )
    log.info("labels: %d of %d images named in %s (%s)", matched, len(source.records), table.source, table.kind)
    if missing:
        log.warning("labels: %d of %d images are not in %s and keep no label (e.g. %s)", len(missing), len(source.records),
                    table.source, missing[0])  # fmt: skip
    how = f"labels: by file name from {table.source.name} ({table.kind}), {matched} of {len(source.records)} images"
    return replace(source, records=records, skipped=skipped, labels_from=how)


def open_source(
    spec: str | Path,
    *,
    classes: ClassMap | None = None,
    class_space: ClassSpace | None = None,
    boxes: str | Path | None = None,
    labels: str | Path | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> ImageSource:
    """Open a folder, a CSV manifest or ``builtin:photos`` as an ordered list of images.

    ``class_space``: the classes of the model the images are for; labels are then checked
    against it (``data.labels``) and wnid folders get its indices. ``limit`` keeps the first
    images; ``sample`` a seeded sample stratified by label (after boxes, whose object names
    may give the labels), ``seed`` its seed. ``labels``: a labels file by file name (``attach_labels``),
    applied before boxes.
    """
    if limit is not None and sample is not None:
        raise InputError("--limit and --sample cannot be combined: --limit takes the first N images, --sample a seeded sample of N")
    labeller = Labeller.create(classes, class_space)
    if str(spec) == BUILTIN_PHOTOS:
        source = _bundled_source()
    else:
        path = Path(spec)
        if not path.exists():
            raise InputError(f"images not found: {path} (a folder, a .csv manifest or {BUILTIN_PHOTOS})")
        if path.is_dir():
            source = _list_folder(path, labeller)
        elif path.suffix.lower() == ".csv":
            source = _read_manifest(path, labeller)
        else:
            raise InputError(f"--images expects a folder, a .csv manifest or {BUILTIN_PHOTOS}, got the file {path}")
    source = source.limited(limit)
    if not source.records:
        reasons = f" ({len(source.skipped)} inputs skipped, e.g. {source.skipped[0].path}: {source.skipped[0].reason})" if source.skipped else ""
        raise InputError(f"no images found in {spec}{reasons}")
    if labels is not None:
        source = attach_labels(source, labels, labeller)
    if boxes is not None:
        source = attach_boxes(source, boxes, labeller=labeller)
    if not source.records:
        first = source.skipped[-1]
        raise InputError(f"no usable images in {spec}: all {len(source.skipped)} inputs skipped (e.g. {first.path}: {first.reason})")
    source = source.sampled(sample, seed)
    labeller.check(source.records)
    return source
