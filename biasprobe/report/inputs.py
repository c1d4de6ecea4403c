"""Read what a report is made from: the scores and invariance tables with their companions,
the index's meta.json and training boxes, and boxes files. Optional parts may be absent.

Stage summaries and meta.json are read as plain JSON objects: the report shows them whole in
its provenance and looks up only a few keys (``images_root`` and the ones ``_read_invariance``
and ``ReportInputs.neighbour_roots`` name), so typed records' ``format`` and ``format_version``
keys, or any other new key, never stop a report.

Every stage's skipped inputs are read: the scores' and each invariance table's companions, and
with ``--index`` the index build's ``skipped.parquet``. The index files the report reads
(``skipped.parquet``, ``boxes.parquet``) are checked against the sizes and SHA-256 its
``meta.json`` recorded (an index of format version 3 or later), and a table with no row is
refused: a stage that could use no image never writes one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.digests import FileDigest, read_verified
from biasprobe.core.errors import DamagedStateError, InputError
from biasprobe.core.io import companion, parse_table, read_table
from biasprobe.core.records import read_json_object
from biasprobe.data.boxes import read_boxes

__all__ = ["InvarianceInput", "ReportInputs", "boxes_features", "distinct_label", "load_inputs", "read_json", "recorded_images_root"]

log = logging.getLogger(__name__)


def read_json(path: Path) -> dict:
    """A JSON object, or {} when the file is absent (a clear error when it is broken)."""
    return read_json_object(path) if path.is_file() else {}


def recorded_images_root(summary: Mapping[str, object]) -> str | None:
    """Where a stage summary's relative image paths start: its top-level ``images_root`` string
    (``builtin:photos`` for the bundled photos), or None when it recorded none."""
    root = summary.get("images_root")
    return root if isinstance(root, str) and root else None


def _optional_table(path: Path) -> pd.DataFrame:
    return read_table(path) if path.is_file() else pd.DataFrame()


@dataclass(frozen=True, eq=False)
class InvarianceInput:
    """One invariance file (one model) and its companions."""

    path: Path
    model: str
    table: pd.DataFrame
    views: pd.DataFrame
    summary: dict
    skipped: pd.DataFrame


@dataclass(frozen=True, eq=False)
class ReportInputs:
    """Everything read from disk for one report."""

    scores: pd.DataFrame | None
    scores_path: Path | None
    scores_summary: dict
    scores_skipped: pd.DataFrame
    invariance: tuple[InvarianceInput, ...]
    index_meta: dict = field(default_factory=dict)
    index_path: Path | None = None
    index_skipped: pd.DataFrame = field(default_factory=pd.DataFrame)
    boxes_train: np.ndarray | None = None
    boxes_test: np.ndarray | None = None
    images_root: str | None = None

    @property
    def combined(self) -> pd.DataFrame:
        """All invariance rows, one ``model`` name per file."""
        return pd.concat([inv.table for inv in self.invariance], ignore_index=True)

    def image_roots(self) -> tuple[str, ...]:
        """Where relative image paths are looked up, in order: --images, then the root each stage
        summary recorded (scores first, then the invariance files)."""
        summaries = [self.scores_summary, *(inv.summary for inv in self.invariance)]
        roots = [self.images_root, *(recorded_images_root(s) for s in summaries)]
        return tuple(dict.fromkeys(r for r in roots if r))

    def neighbour_roots(self) -> tuple[str, ...]:
        """Where training images (neighbours) are looked up: the index's images first."""
        index_summary = self.scores_summary.get("index") or {}
        roots = [self.index_meta.get(key) for key in ("images", "source")]
        roots += [index_summary.get(key) for key in ("images", "source")]
        return tuple(dict.fromkeys(r for r in roots if isinstance(r, str) and r)) + self.image_roots()


def boxes_features(path: str | Path) -> np.ndarray:
    """(n, 3) array of (cx, cy, log size) of the largest box per image of a boxes file."""
    table = read_boxes(path)
    boxes = table.boxes()
    return np.array([b.features() for b in boxes], dtype=float).reshape(-1, 3)


def _frame_boxes(frame: pd.DataFrame | None) -> np.ndarray | None:
    cols = ["box_cx", "box_cy", "box_log_size"]
    if frame is None or not set(cols) <= set(frame.columns):
        return None
    values = frame[cols].apply(pd.to_numeric, errors="coerce").dropna().to_numpy(dtype=float)
    return values if len(values) else None


def _index_table(index: Path, meta: Mapping[str, object], name: str) -> pd.DataFrame:
    """A table of the index folder, checked against the digest its meta.json recorded, if any."""
    recorded = meta.get("files")
    if not isinstance(recorded, Mapping) or name not in recorded:
        return read_table(index / name)  # an index from before digests were recorded
    try:
        digest = FileDigest.from_json(recorded[name])
    except ValueError as exc:
        raise DamagedStateError(f"index {index} is damaged: meta.json records {name} as {recorded[name]!r}") from exc
    data, why = read_verified(index / name, digest)
    if why is not None:
        raise DamagedStateError(f"index {index} is damaged: {name} {why}; rebuild it with 'biasprobe index build'")
    assert data is not None
    return parse_table(data, source=str(index / name))


def _index_boxes(index: Path, meta: Mapping[str, object]) -> np.ndarray | None:
    for file in sorted(index.glob("*boxes*.parquet")):
        found = _frame_boxes(_index_table(index, meta, file.name))
        if found is not None:
            return found
    return None


def _refuse_empty(table: pd.DataFrame, path: Path, stage: str) -> None:
    if table.empty:
        skipped = companion(path, "skipped")
        raise InputError(
            f"{path} holds no image (an empty '{stage}' table, e.g. from a run where no image could be used; "
            f"see {skipped.name}): run 'biasprobe {stage}' again on usable images"
        )


def distinct_label(model: str, path: Path, taken: set[str]) -> str:
    """``model``, or, for the same model a second time (e.g. another weights file), the model with
    its file's stem less the model's name: world_vgg-augmented.parquet -> ``world_vgg (augmented)``.
    The label is added to ``taken``."""
    if model in taken:
        stem = path.name.removesuffix(".parquet").removesuffix(".layers")
        model = f"{model} ({stem.removeprefix(model + '-') or stem})"
    taken.add(model)
    return model


def _read_invariance(path: Path, taken: set[str]) -> InvarianceInput:
    table = read_table(path)
    _refuse_empty(table, path, "invariance")
    summary = read_json(companion(path, "summary"))
    model = str(table["model"].iloc[0]) if "model" in table.columns and len(table) else ""
    model = model or str(summary.get("model", {}).get("model", "")) or path.stem
    model = distinct_label(model, path, taken)
    table = table.assign(model=model)
    views = _optional_table(companion(path, "views"))
    return InvarianceInput(path, model, table, views, summary, _optional_table(companion(path, "skipped")))


def load_inputs(
    scores: str | Path | None,
    invariance_files: list[str | Path] | tuple[str | Path, ...],
    *,
    index: str | Path | None = None,
    boxes_train: str | Path | None = None,
    boxes_test: str | Path | None = None,
    images_root: str | Path | None = None,
) -> ReportInputs:
    """Read every input; clear errors for missing required files."""
    if not invariance_files:
        raise InputError("no invariance file given; pass at least one output of 'biasprobe invariance'")
    scores_path = Path(scores) if scores is not None else None
    scores_df = read_table(scores_path) if scores_path is not None else None
    if scores_df is not None and scores_path is not None:
        _refuse_empty(scores_df, scores_path, "score")
    taken: set[str] = set()
    invariance = tuple(_read_invariance(Path(p), taken) for p in invariance_files)
    index_meta: dict = {}
    index_path = Path(index) if index is not None else None
    index_skipped = pd.DataFrame()
    train = None
    if index_path is not None:
        if not (index_path / "meta.json").is_file():
            raise InputError(f"--index {index_path} has no meta.json; expected a folder made by 'biasprobe index build'")
        index_meta = read_json(index_path / "meta.json")
        train = _index_boxes(index_path, index_meta)
        if (index_path / "skipped.parquet").is_file():
            index_skipped = _index_table(index_path, index_meta, "skipped.parquet")
    if boxes_train is not None:
        train = boxes_features(boxes_train)
    test = boxes_features(boxes_test) if boxes_test is not None else _frame_boxes(scores_df)
    return ReportInputs(
        scores=scores_df,
        scores_path=scores_path,
        scores_summary=read_json(companion(scores_path, "summary")) if scores_path else {},
        scores_skipped=_optional_table(companion(scores_path, "skipped")) if scores_path else pd.DataFrame(),
        invariance=invariance,
        index_meta=index_meta,
        index_path=index_path,
        index_skipped=index_skipped,
        boxes_train=train,
        boxes_test=test,
        images_root=str(images_root) if images_root is not None else None,
    )
