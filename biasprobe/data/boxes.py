"""Object boxes: Pascal VOC XML (1-based inclusive), CSV (0-based, exclusive max) and Kaggle's
ImageNet ``LOC_*_solution.csv`` (``data.imagenet_layout``; the XML numbers, read as VOC) readers.

One box per image, the largest; features for the photographer's bias are the normalised
centre and the log relative size ``log(sqrt(w * h / (W * H)))`` (docs/protocols.md section 4).
A VOC file also gives the ``<name>`` of the largest box's object (ImageNet: the wnid), which
``sources.attach_boxes`` can turn into a label; so does a LOC file, when all of an image's boxes
name one wnid. A LOC file gives no image sizes: its table is ``unsized`` and each box gets its
image's size from the image file when ``sources.attach_boxes`` attaches it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from biasprobe.core.errors import InputError
from biasprobe.data.imagenet_layout import is_loc_solution, read_loc_solution

__all__ = ["Box", "BoxTable", "read_boxes"]


@dataclass(frozen=True)
class Box:
    """A box in 0-based pixel coordinates: ``[xmin, xmin + width)`` on an image of W x H."""

    xmin: float
    ymin: float
    width: float
    height: float
    image_width: float
    image_height: float

    @classmethod
    def from_corners(cls, xmin: float, ymin: float, xmax: float, ymax: float,
                     image_width: float, image_height: float) -> Box:
        """A box from CSV corners: 0-based, ``xmax`` and ``ymax`` exclusive."""
        return cls(xmin, ymin, xmax - xmin, ymax - ymin, image_width, image_height)

    @property
    def area(self) -> float:
        return self.width * self.height

    def with_image_size(self, image_width: float, image_height: float) -> Box:
        """The same box on an image of the given size (a LOC box gets it from the image file)."""
        return Box(self.xmin, self.ymin, self.width, self.height, float(image_width), float(image_height))

    def features(self) -> tuple[float, float, float]:
        """Normalised centre (cx, cy) and log relative size."""
        cx = (self.xmin + self.width / 2) / self.image_width
        cy = (self.ymin + self.height / 2) / self.image_height
        size = math.log(math.sqrt(self.area / (self.image_width * self.image_height)))
        return cx, cy, size


@dataclass(frozen=True)
class BoxTable:
    """Largest box per image, looked up by relative path or by file stem; ``names``: the VOC
    object name of each stem's largest box (a LOC file: the wnid all its boxes name), and
    ``name_problems`` why a stem has none (a LOC image whose boxes name several classes).
    ``unsized``: the boxes carry no image size (a LOC file); ``boxes()`` refuses them.
    """

    by_path: dict[str, Box]
    by_stem: dict[str, Box]
    source: Path
    names: dict[str, str] = field(default_factory=dict)
    name_problems: dict[str, str] = field(default_factory=dict)
    unsized: bool = False

    def boxes(self) -> list[Box]:
        """Every image's largest box; ``InputError`` for a LOC file, whose boxes need their images' sizes."""
        if self.unsized:
            raise InputError(
                f"the boxes in {self.source} (a Kaggle LOC solution file) give no image sizes, so they are usable "
                "only with --boxes beside --images, where each size is read from the image; here give a boxes CSV "
                "(path,xmin,ymin,xmax,ymax,image_width,image_height) or the ILSVRC XML files"
            )
        return [*self.by_path.values(), *self.by_stem.values()]

    def lookup(self, relative_path: str) -> Box | None:
        key = PurePosixPath(relative_path)
        return self.by_path.get(str(key)) or self.by_stem.get(key.stem)

    def name_of(self, relative_path: str) -> str | None:
        """The object name of the image's largest VOC box (None for CSV boxes or no box)."""
        return self.names.get(PurePosixPath(relative_path).stem)

    def name_problem(self, relative_path: str) -> str | None:
        """Why the image's boxes give no object name although it has boxes (None: no problem)."""
        return self.name_problems.get(PurePosixPath(relative_path).stem)

    def example_keys(self, count: int = 2) -> str:
        """A few of the paths or stems the table holds, for messages."""
        keys = [*self.by_path, *self.by_stem][:count]
        return ", ".join(repr(k) for k in keys) if keys else "nothing (no boxes)"

    def __len__(self) -> int:
        return len(self.by_path) + len(self.by_stem)


def _keep_largest(boxes: dict[str, Box], key: str, box: Box) -> bool:
    old = boxes.get(key)
    if old is None or box.area > old.area:
        boxes[key] = box
        return True
    return False


def _number(element: ET.Element, tag: str) -> float:
    """The number in ``element``'s child ``tag`` (ValueError when it is missing)."""
    text = element.findtext(tag)
    if text is None:
        raise ValueError(f"no <{tag}> in <{element.tag}>")
    return float(text)


def _read_voc_file(path: Path, by_stem: dict[str, Box], names: dict[str, str]) -> None:
    try:
        root = ET.parse(path).getroot()
        filename = root.findtext("filename") or path.stem
        width = _number(root, "size/width")
        height = _number(root, "size/height")
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                continue
            xmin, ymin, xmax, ymax = (_number(bb, t) for t in ("xmin", "ymin", "xmax", "ymax"))
            box = Box(xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1, width, height)
            stem = PurePosixPath(filename).stem
            if _keep_largest(by_stem, stem, box):
                name = (obj.findtext("name") or "").strip()
                if name:
                    names[stem] = name
                else:
                    names.pop(stem, None)
    except (ET.ParseError, TypeError, ValueError) as exc:
        raise InputError(f"cannot read Pascal VOC boxes from {path}: {exc}") from exc


def _read_csv(path: Path) -> dict[str, Box]:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read boxes CSV {path}: {exc}") from exc
    needed = {"path", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height"}
    missing = needed - set(table.columns)
    if missing:
        raise InputError(
            f"boxes CSV {path} lacks columns {sorted(missing)}; expected "
            "path,xmin,ymin,xmax,ymax,image_width,image_height (0-based, max exclusive)"
        )
    boxes: dict[str, Box] = {}
    for row in table.itertuples(index=False):
        box = Box.from_corners(
            float(row.xmin), float(row.ymin), float(row.xmax), float(row.ymax),
            float(row.image_width), float(row.image_height),
        )
        if box.width <= 0 or box.height <= 0:
            raise InputError(f"boxes CSV {path}: empty box for {row.path}")
        _keep_largest(boxes, str(PurePosixPath(str(row.path))), box)
    return boxes


def _read_loc(path: Path) -> BoxTable:
    solution = read_loc_solution(path)
    by_stem: dict[str, Box] = {}
    names: dict[str, str] = {}
    problems: dict[str, str] = {}
    for stem in solution.boxes:
        largest = solution.largest(stem)
        assert largest is not None
        by_stem[stem] = Box(largest.xmin - 1, largest.ymin - 1, largest.xmax - largest.xmin + 1,
                            largest.ymax - largest.ymin + 1, 0.0, 0.0)  # fmt: skip
        wnid, why = solution.wnid_of(stem)
        if wnid is not None:
            names[stem] = wnid
        else:
            problems[stem] = why or "no object name"
    return BoxTable(by_path={}, by_stem=by_stem, source=path, names=names, name_problems=problems, unsized=True)


def read_boxes(path: str | Path) -> BoxTable:
    """Read boxes from a CSV file (a Kaggle LOC solution file too, told by its header), one VOC
    XML file, or a folder of VOC XML files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"boxes file or folder not found: {path}")
    by_path: dict[str, Box] = {}
    by_stem: dict[str, Box] = {}
    names: dict[str, str] = {}
    if path.is_dir():
        files = sorted(path.rglob("*.xml"))
        if not files:
            raise InputError(f"no Pascal VOC .xml files in {path}")
        for file in files:
            _read_voc_file(file, by_stem, names)
    elif path.suffix.lower() == ".xml":
        _read_voc_file(path, by_stem, names)
    elif is_loc_solution(path):
        return _read_loc(path)
    else:
        by_path = _read_csv(path)
    return BoxTable(by_path=by_path, by_stem=by_stem, source=path, names=names)
