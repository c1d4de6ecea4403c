"""The score stage's ``X.summary.json``: dataset-level figures of one scored image set.

``ScoreSummary`` records the index scored against (``IndexSummary``: its folder, model
signature, size, FAISS factory, reference and boxes), k, counts, ``knn_dist`` quantiles, the
mean atypicality, whether pose atypicality was computed, library versions, the command, and
``images_root``: where the table's relative ``path`` values start (the report finds the
images there). As in ``meta.json``, the signature's keys sit directly in the ``index`` block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from biasprobe.core.io import to_jsonable
from biasprobe.core.records import JsonRecord
from biasprobe.index.meta import BoxesInfo, IndexMeta, ModelSignature, ReferenceInfo

__all__ = ["IndexSummary", "ScoreSummary"]


@dataclass(frozen=True)
class IndexSummary:
    """The index a scores file was computed against."""

    folder: str
    signature: ModelSignature
    dim: int
    count: int
    distinct_images: int
    factory: str
    search_params: str
    reference: ReferenceInfo
    boxes: BoxesInfo | None
    versions: dict[str, str]

    @classmethod
    def of(cls, folder: str, meta: IndexMeta) -> IndexSummary:
        return cls(folder, meta.signature, meta.dim, meta.count, meta.distinct_images, meta.factory, meta.search_params,
                   meta.reference, meta.boxes, meta.versions)

    def to_json(self) -> dict[str, Any]:
        out = to_jsonable({
            "folder": self.folder, **self.signature.to_json(), "dim": self.dim, "count": self.count,
            "distinct_images": self.distinct_images, "factory": self.factory, "search_params": self.search_params,
            "reference": dataclasses.asdict(self.reference),
            "boxes": dataclasses.asdict(self.boxes) if self.boxes is not None else None, "versions": self.versions,
        })
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IndexSummary:
        boxes = data["boxes"]
        return cls(str(data["folder"]), ModelSignature.from_json(data), int(data["dim"]), int(data["count"]),
                   int(data["distinct_images"]), str(data["factory"]), str(data["search_params"]),
                   ReferenceInfo(**data["reference"]), None if boxes is None else BoxesInfo.from_json(boxes),
                   dict(data["versions"]))


@dataclass(frozen=True)
class ScoreSummary(JsonRecord):
    """``biasprobe score``'s summary of one image set."""

    FORMAT: ClassVar[str] = "biasprobe.scores"
    FORMAT_VERSION: ClassVar[int] = 1

    index: IndexSummary
    k: int
    images: int  # scored images (rows of the table)
    skipped: int
    in_train: int  # scored images that are training images
    knn_dist_quantiles: dict[str, float]  # "0", "0.1", "0.25", "0.5", "0.75", "0.9", "1"
    atypicality_mean: float
    pose_atypicality: bool  # whether the table has pose_atypicality
    versions: dict[str, str]
    command: tuple[str, ...] | None
    images_root: str  # where the table's relative paths start (ImageSource.images_root)

    def to_json(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out = to_jsonable({"format": self.FORMAT, "format_version": self.FORMAT_VERSION, **body, "index": self.index.to_json()})
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> ScoreSummary:
        command = fields["command"]
        return cls(**{**fields, "index": IndexSummary.from_json(fields["index"]),
                      "command": None if command is None else tuple(command)})
