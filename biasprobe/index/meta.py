"""An index's ``meta.json``: what was built, from what, with what (docs/architecture.md).

``IndexMeta`` is written last by ``build_index`` (its presence marks a finished index) and
read by ``TrainingIndex.open``, which refuses an index of another format or format version.
The JSON keeps the model signature's keys at the top level (``model``, ``weights_sha256``,
``layer``, ``preprocessing``, ``normalisation``) and repeats ``reference.k_max`` as ``k_max``.
``files`` (format version 3) maps every other file of the index folder (relative path) to its
size and SHA-256, recorded when it was written; ``TrainingIndex.open`` checks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from biasprobe.core.digests import FileDigest, digests_from_json, digests_to_json
from biasprobe.core.io import to_jsonable
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.records import FormatError, JsonRecord

if TYPE_CHECKING:
    from biasprobe.models import ProbeModel

__all__ = ["BoxesInfo", "EmbedPreprocessing", "IndexMeta", "ModelSignature", "ReferenceInfo"]

REBUILD = "rebuild it with 'biasprobe index build'"


def _json(record: Any) -> dict[str, Any]:
    """A dataclass instance as plain JSON values (nested dataclasses as objects, tuples as lists)."""
    out = to_jsonable(dataclasses.asdict(record))
    assert isinstance(out, dict)
    return out


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass(frozen=True)
class EmbedPreprocessing:
    """The part of a model's preprocessing that shapes its embeddings."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float

    @classmethod
    def of(cls, prep: Preprocessing) -> EmbedPreprocessing:
        return cls(prep.input_size, prep.mean, prep.std, prep.crop_pct)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmbedPreprocessing:
        mean, std = tuple(data["mean"]), tuple(data["std"])
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values, got {list(mean)} and {list(std)}")
        return cls(int(data["input_size"]), (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), float(data["crop_pct"]))


@dataclass(frozen=True)
class ModelSignature:
    """What must agree between an index and a model that queries it: name, weights, layer,
    preprocessing and normalisation of the embeddings."""

    model: str
    weights_sha256: str | None
    layer: str
    preprocessing: EmbedPreprocessing
    normalisation: str = "L2"

    @classmethod
    def of(cls, model: ProbeModel) -> ModelSignature:
        desc = model.describe()
        return cls(model.name, model.weights_sha256, str(desc["layer"]), EmbedPreprocessing.of(model.preprocessing))

    def to_json(self) -> dict[str, Any]:
        return _json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSignature:
        weights = data["weights_sha256"]
        return cls(str(data["model"]), None if weights is None else str(weights), str(data["layer"]),
                   EmbedPreprocessing.from_json(data["preprocessing"]), str(data["normalisation"]))

    def differences(self, other: ModelSignature) -> list[tuple[str, Any, Any]]:
        """(dotted key, our value, theirs) for every JSON value that differs, in key order."""
        ours, theirs = _flat(self.to_json()), _flat(other.to_json())
        return [(key, ours.get(key), theirs.get(key)) for key in theirs if ours.get(key) != theirs[key]]




@dataclass(frozen=True)
class ReferenceInfo:
    """How the leave-one-out reference was made (``reference.leave_one_out_reference``)."""

    k_max: int
    k_ref: int
    images: int
    sampled: bool
    seed: int | None
    distinct_images: int


@dataclass(frozen=True)
class BoxesInfo:
    """The fitted box density (``pose.PoseDensity``): its size, bandwidth and standardisation."""

    count: int
    bandwidth: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bandwidth_grid: tuple[float, float, int]  # first, last, number of log-spaced values
    cv_folds: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BoxesInfo:
        lo, hi, n = data["bandwidth_grid"]
        return cls(int(data["count"]), float(data["bandwidth"]), tuple(data["mean"]), tuple(data["std"]),
                   (float(lo), float(hi), int(n)), int(data["cv_folds"]))


@dataclass(frozen=True)
class IndexMeta(JsonRecord):
    """Everything ``meta.json`` records about a built index."""

    FORMAT: ClassVar[str] = "biasprobe.index"
    FORMAT_VERSION: ClassVar[int] = 3

    signature: ModelSignature
    model_describe: dict[str, Any]  # ProbeModel.describe(): weights source, classes, config
    dim: int
    count: int  # rows (duplicate files are rows sharing one id)
    distinct_images: int
    skipped: int
    factory: str
    search_params: str
    shards: tuple[str, ...]  # emb_XXXX.npy under shards/, row-aligned with ids.parquet
    shard_size: int
    batch_size: int
    source: str
    reference: ReferenceInfo
    boxes: BoxesInfo | None
    runtime: dict[str, Any]
    versions: dict[str, str]
    seed: int
    command: tuple[str, ...] | None
    files: dict[str, FileDigest]  # every other file of the folder: relative path -> size and SHA-256

    @property
    def model(self) -> str:
        """The model's registry name."""
        return self.signature.model

    @property
    def weights_source(self) -> str | None:
        """Where the model's weights were read from at build time (a file or a URL), if known."""
        source = self.model_describe.get("weights_source")
        return None if source is None else str(source)

    @property
    def built_by(self) -> str:
        """The model the index was built by, for messages: 'world_vgg with weights /w/vgg.pt (sha256 5553...)'."""
        sha = self.signature.weights_sha256
        weights = f" with weights {self.weights_source}" if self.weights_source else ""
        return f"{self.model}{weights}" + (f" (sha256 {sha[:12]}...)" if sha else "")

    @property
    def exact(self) -> bool:
        """Whether the FAISS index is exhaustive (``Flat``)."""
        return self.factory == "Flat"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"format": self.FORMAT, "format_version": self.FORMAT_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "signature":
                body.update(value.to_json())
            elif f.name == "files":
                body[f.name] = digests_to_json(value)
            else:
                body[f.name] = _json(value) if dataclasses.is_dataclass(value) else value
            if f.name == "reference":
                body["k_max"] = self.reference.k_max
        out = to_jsonable(body)
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "<json>") -> IndexMeta:
        found, version = data.get("format"), data.get("format_version")
        if found != cls.FORMAT or version != cls.FORMAT_VERSION:
            raise FormatError(
                f"{source} holds an index of format {found!r} version {version!r}; this biasprobe reads "
                f"{cls.FORMAT!r} version {cls.FORMAT_VERSION}: {REBUILD}"
            )
        fields = dict(data)
        signature_keys = [f.name for f in dataclasses.fields(ModelSignature)]
        fields["signature"] = {key: fields.pop(key) for key in signature_keys if key in fields}
        fields.pop("k_max", None)
        return super().from_json(fields, source=source)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> IndexMeta:
        boxes, command = fields["boxes"], fields["command"]
        return cls(**{
            **fields,
            "signature": ModelSignature.from_json(fields["signature"]),
            "shards": tuple(fields["shards"]),
            "reference": ReferenceInfo(**fields["reference"]),
            "boxes": None if boxes is None else BoxesInfo.from_json(boxes),
            "command": None if command is None else tuple(command),
            "files": digests_from_json(fields["files"]),
        })
