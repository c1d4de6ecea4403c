"""ImageNet as users have it on disk: the Kaggle localisation files and per-file label CSVs.

The Kaggle "ImageNet Object Localization Challenge" copy of ILSVRC2012 holds:

- ``LOC_synset_mapping.txt``: ``n01440764 tench, Tinca tinca``, one class a line, line order =
  class index 0..999 (the ImageNet-1k order; ``data.classes`` reads it as a ``--classes`` file);
- ``LOC_train_solution.csv`` and ``LOC_val_solution.csv``: a header ``ImageId,PredictionString``,
  then one line per image: the file name without extension (``ILSVRC2012_val_00000001``,
  ``n01440764_10026``) and ``wnid xmin ymin xmax ymax`` repeated once per object box;
- ``train/<wnid>/<wnid>_<n>.JPEG`` (an ImageFolder tree of wnids) and ``val/`` flat.

The box numbers are those of the ILSVRC XML files, read as ``data.boxes`` reads Pascal VOC
(1-based, max inclusive), so an image gets the same box from either. The files give no image
size: a box's size and centre relative to the image come from the image file when it is
attached to an image (``sources.attach_boxes``).

A per-file label CSV (``read_file_labels``) is either such a LOC file (the label is the wnid all
of an image's boxes name) or ``file_name,label`` (the label an integer class index or a wnid;
e.g. ``imagenet_x``'s ``filename_label.csv``). Every problem with a line is one error line naming
the file and the line number.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from biasprobe.core.errors import InputError
from biasprobe.data.labels import is_wnid
from biasprobe.data.names import printable

__all__ = ["LOC_HEADER", "FileLabels", "LocBox", "LocSolution", "file_key", "is_loc_solution", "read_file_labels",
           "read_loc_solution"]

LOC_HEADER = ("ImageId", "PredictionString")
"""The header of Kaggle's ``LOC_train_solution.csv`` and ``LOC_val_solution.csv``."""

FILE_LABEL_COLUMNS = ("file_name", "label")


def file_key(name: str) -> str:
    """The key an image is found by in these files: its file name without folder and suffix
    (``val/ILSVRC2012_val_00000001.JPEG`` and ``ILSVRC2012_val_00000001`` give the same key)."""
    return PurePosixPath(name).stem


@dataclass(frozen=True)
class LocBox:
    """One object box of a LOC file: its wnid and the numbers as written (1-based, max inclusive)."""

    wnid: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def area(self) -> float:
        return (self.xmax - self.xmin + 1) * (self.ymax - self.ymin + 1)


@dataclass(frozen=True)
class LocSolution:
    """Every box of every image of a LOC solution file, by image id (the file name's stem)."""

    boxes: dict[str, tuple[LocBox, ...]]
    source: Path

    def __len__(self) -> int:
        return len(self.boxes)

    def largest(self, image_id: str) -> LocBox | None:
        """The image's largest box (the first of equal ones), None when it has none."""
        boxes = self.boxes.get(image_id)
        return max(boxes, key=lambda b: b.area) if boxes else None

    def wnid_of(self, image_id: str) -> tuple[str | None, str | None]:
        """(the wnid all of the image's boxes name, None) or (None, why there is no single one)."""
        boxes = self.boxes.get(image_id)
        if not boxes:
            return None, f"no box in {self.source.name}"
        wnids = sorted({b.wnid for b in boxes})
        if len(wnids) > 1:
            return None, f"its boxes in {self.source.name} name several classes ({', '.join(wnids)})"
        return wnids[0], None


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return handle.readline().strip()
    except OSError as exc:
        raise InputError(f"cannot read {printable(str(path))}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {printable(str(path))}: it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _header(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in next(csv.reader([line]), []))


def is_loc_solution(path: str | Path) -> bool:
    """Whether a CSV file is a Kaggle LOC solution file (its header is ``ImageId,PredictionString``)."""
    path = Path(path)
    return path.is_file() and _header(_first_line(path)) == LOC_HEADER


def _rows(path: Path, what: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty line after the header."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for cells in reader:
                if cells and any(c.strip() for c in cells):
                    yield reader.line_num, cells
    except OSError as exc:
        raise InputError(f"cannot read {what} {printable(str(path))}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {what} {printable(str(path))}: it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise InputError(f"{what} {printable(str(path))}: malformed CSV: {exc}") from exc


def _loc_boxes(text: str, where: str) -> tuple[LocBox, ...]:
    tokens = text.split()
    if not tokens or len(tokens) % 5:
        raise InputError(f"{where}: PredictionString must be 'wnid xmin ymin xmax ymax' once per box, got "
                         f"{len(tokens)} values ({printable(text[:60])!r})")
    boxes = []
    for start in range(0, len(tokens), 5):
        wnid, *numbers = tokens[start : start + 5]
        if not is_wnid(wnid):
            raise InputError(f"{where}: {printable(wnid)!r} is not a wnid (n and eight digits) in box {start // 5 + 1}")
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in numbers)
        except ValueError:
            raise InputError(f"{where}: box {start // 5 + 1} has coordinates that are not numbers "
                             f"({printable(' '.join(numbers))!r})") from None
        if not all(math.isfinite(v) and v >= 0 for v in (xmin, ymin, xmax, ymax)) or xmax < xmin or ymax < ymin:
            raise InputError(f"{where}: box {start // 5 + 1} ({' '.join(numbers)}) is not a box: expected "
                             "0 <= xmin <= xmax and 0 <= ymin <= ymax")
        boxes.append(LocBox(wnid, xmin, ymin, xmax, ymax))
    return tuple(boxes)


def read_loc_solution(path: str | Path) -> LocSolution:
    """Read ``LOC_train_solution.csv`` or ``LOC_val_solution.csv``; ``InputError`` (one line, with
    the line number) for a malformed line or an image listed twice."""
    path = Path(path)
    what = "LOC solution file"
    header = _header(_first_line(path))
    if header != LOC_HEADER:
        raise InputError(f"{what} {printable(str(path))} must start with the header ImageId,PredictionString, "
                         f"got {printable(','.join(header))!r}")
    boxes: dict[str, tuple[LocBox, ...]] = {}
    first_line: dict[str, int] = {}
    for line, cells in _rows(path, what):
        where = f"{printable(str(path))}, line {line}"
        if len(cells) != 2:
            raise InputError(f"{where}: expected 2 fields (ImageId,PredictionString), got {len(cells)}")
        image_id = file_key(cells[0].strip())
        if not image_id:
            raise InputError(f"{where}: empty ImageId")
        if image_id in boxes:
            raise InputError(f"{where}: image {printable(image_id)!r} is listed again (first on line {first_line[image_id]})")
        boxes[image_id] = _loc_boxes(cells[1], where)
        first_line[image_id] = line
    if not boxes:
        raise InputError(f"{what} {printable(str(path))} lists no images")
    return LocSolution(boxes, path)


@dataclass(frozen=True)
class FileLabels:
    """Label text by image key (``file_key``), and why some images have none (key -> reason).

    ``texts`` are as written: an integer class index or a wnid; ``data.labels.Labeller.label_of``
    turns them into classes.
    """

    texts: dict[str, str]
    problems: dict[str, str]
    source: Path
    kind: str

    def __len__(self) -> int:
        return len(self.texts) + len(self.problems)


def _read_file_name_labels(path: Path) -> FileLabels:
    what = "labels file"
    header = _header(_first_line(path))
    if not set(FILE_LABEL_COLUMNS) <= set(header):
        raise InputError(f"{what} {printable(str(path))} needs a header with file_name,label (or be a Kaggle LOC "
                         f"solution file with ImageId,PredictionString), got {printable(','.join(header))!r}")
    name_at, label_at = header.index("file_name"), header.index("label")
    texts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, cells in _rows(path, what):
        where = f"{printable(str(path))}, line {line}"
        if len(cells) != len(header):
            raise InputError(f"{where}: expected {len(header)} fields ({','.join(header)}), got {len(cells)}")
        key, label = file_key(cells[name_at].strip()), cells[label_at].strip()
        if not key:
            raise InputError(f"{where}: empty file_name")
        if not label:
            raise InputError(f"{where}: empty label for {printable(key)!r}")
        if key in texts and texts[key] != label:
            raise InputError(f"{where}: {printable(key)!r} is labelled {printable(label)!r}, but "
                             f"{printable(texts[key])!r} on line {first_line[key]}")
        texts.setdefault(key, label)
        first_line.setdefault(key, line)
    if not texts:
        raise InputError(f"{what} {printable(str(path))} lists no images")
    return FileLabels(texts, {}, path, "file_name,label")


def read_file_labels(path: str | Path) -> FileLabels:
    """Labels by file name from a Kaggle LOC solution file or a ``file_name,label`` CSV."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file not found: {printable(str(path))}")
    if is_loc_solution(path):
        solution = read_loc_solution(path)
        texts: dict[str, str] = {}
        problems: dict[str, str] = {}
        for key in solution.boxes:
            wnid, why = solution.wnid_of(key)
            if wnid is None:
                problems[key] = why or "no label"
            else:
                texts[key] = wnid
        return FileLabels(texts, problems, path, "Kaggle LOC solution")
    return _read_file_name_labels(path)
