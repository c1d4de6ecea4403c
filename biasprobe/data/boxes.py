"""Object boxes: Pascal VOC XML (1-based inclusive) and CSV (0-based, exclusive max) readers.

One box per image, the largest; features for the photographer's bias are the normalised
centre and the log relative size ``log(sqrt(w * h / (W * H)))`` (docs/protocols.md section 4).
A VOC file also gives the ``<name>`` of the largest box's object (ImageNet: the wnid), which
``sources.attach_boxes`` can turn into a label.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from biasprobe.core.errors import InputError

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

    def features(self) -> tuple[float, float, float]:
        """Normalised centre (cx, cy) and log relative size."""
        cx = (self.xmin + self.width / 2) / self.image_width
        cy = (self.ymin + self.height / 2) / self.image_height
        size = math.log(math.sqrt(self.area / (self.image_width * self.image_height)))
        return cx, cy, size


@dataclass(frozen=True)
class BoxTable:
    """Largest box per image, looked up by relative path or by file stem; ``names``: the VOC
    object name of each stem's largest box."""

    by_path: dict[str, Box]
    by_stem: dict[str, Box]
    source: Path
    names: dict[str, str] = field(default_factory=dict)

    def lookup(self, relative_path: str) -> Box | None:
        key = PurePosixPath(relative_path)
        return self.by_path.get(str(key)) or self.by_stem.get(key.stem)

    def name_of(self, relative_path: str) -> str | None:
        """The object name of the image's largest VOC box (None for CSV boxes or no box)."""
        return self.names.get(PurePosixPath(relative_path).stem)

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


def read_boxes(path: str | Path) -> BoxTable:
    """Read boxes from a CSV file, one VOC XML file, or a folder of VOC XML files."""
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
    else:
        by_path = _read_csv(path)
    return BoxTable(by_path=by_path, by_stem=by_stem, source=path, names=names)
