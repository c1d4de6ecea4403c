"""The 'positions' section: for each model, the training objects' density, accuracy by position
and instability by position side by side, with the two correlations (docs/protocols.md section 8),
fixes one under the other on the same colour scales."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasprobe.core.errors import InputError
from biasprobe.core.io import companion, read_table
from biasprobe.positions.maps import PositionMaps, TrainingCentres, position_maps, training_centres_from_index
from biasprobe.positions.summary import positions_block
from biasprobe.report.figures import figure_uri
from biasprobe.report.formatting import fmt, fmt_ci
from biasprobe.report.inputs import read_json

__all__ = ["NO_POSITIONS", "positions_figure", "positions_section"]

log = logging.getLogger(__name__)

NO_POSITIONS = {"why": "No positions table was given (--positions, the output of 'biasprobe positions'): the maps of "
                       "accuracy and instability over the frame are not drawn.", "rows": [], "figure": ""}


@dataclass(frozen=True)
class _Model:
    name: str
    maps: PositionMaps
    density: np.ndarray | None
    block: dict


def _training_from(source: str | Path, *, resize_size: int, canvas: int) -> TrainingCentres | None:
    """Training centres from an index folder or a boxes file."""
    path = Path(source)
    if path.is_dir():
        return training_centres_from_index(path, resize_size=resize_size, canvas=canvas)
    from biasprobe.data.boxes import read_boxes

    table = read_boxes(path)
    boxes = table.boxes()
    return TrainingCentres.from_boxes(boxes, resize_size=resize_size, canvas=canvas, bandwidth=None, source=str(path))


def _training_source(summary: dict, model: str, index: str | Path | None, boxes_train: str | Path | None) -> str | None:
    """Where a table's training objects come from: the source its stage recorded (when it is still
    there); else the report's --boxes-train or --index for a model of the index's name (any model
    when only --boxes-train is given). None: no density for this model."""
    recorded = (summary.get("positions") or {}).get("training_source")
    if isinstance(recorded, str) and Path(recorded).exists():
        return recorded
    if index is not None:
        meta = read_json(Path(index) / "meta.json")
        if meta.get("model") != model:
            return None
        return str(boxes_train if boxes_train is not None else index)
    return str(boxes_train) if boxes_train is not None else None


def _label(name: str, stem: str) -> str:
    """A second table of the same model, told apart by its file: 'world_vgg (augmented)'."""
    tail = stem.removesuffix("-positions").removesuffix("_positions")
    tail = tail[len(name) + 1 :] if tail.startswith(name) and len(tail) > len(name) + 1 else tail
    return f"{name} ({tail})"


def _ci(pair: list | None, digits: int = 3) -> str:
    return fmt_ci(pair[0], pair[1], digits) if pair else ""


def _crop(values: np.ndarray, extent: tuple[int, int, int, int]) -> np.ndarray:
    c0, c1, r0, r1 = extent
    return values[r0 : r1 + 1, c0 : c1 + 1]


def positions_figure(models: Sequence[_Model]) -> str:
    """One row per model: density | accuracy | instability over the occupied cells (y down),
    one colour scale per column across the models."""
    from matplotlib.figure import Figure

    columns = [("training objects' density", "density", "Greens"), ("accuracy by position", "accuracy", "Blues"),
               ("instability by position", "instability", "Reds")]  # fmt: skip
    fig = Figure(figsize=(10.5, 3.0 * len(models) + 0.4), layout="constrained")
    axes = fig.subplots(len(models), 3, squeeze=False)
    for col, (title, key, cmap) in enumerate(columns):
        images: list[np.ndarray | None] = []
        for m in models:
            values = m.density if key == "density" else getattr(m.maps, key)
            if values is None:
                images.append(None)
                continue
            shown = np.where(np.isfinite(m.maps.accuracy) | np.isfinite(m.maps.instability), values, np.nan)
            images.append(_crop(shown, m.maps.extent()))
        finite = [v[np.isfinite(v)] for v in images if v is not None and np.isfinite(v).any()]
        vmax = max((float(v.max()) for v in finite), default=1.0) or 1.0
        vmin = 0.0
        if key == "accuracy":
            vmax = 1.0
        drawn = None
        for row, (m, values) in enumerate(zip(models, images, strict=True)):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if values is None or not np.isfinite(values).any():
                why = "no training boxes" if key == "density" else "no labels" if key == "accuracy" else "no neighbours"
                ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=9, color="#5b6570", transform=ax.transAxes)
                ax.set_frame_on(False)
            else:
                c0, c1, r0, r1 = m.maps.extent()
                step = m.maps.cell / m.maps.canvas
                extent = (c0 * step, (c1 + 1) * step, (r1 + 1) * step, r0 * step)
                drawn = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
                ax.set_xticks(np.round(np.linspace(extent[0], extent[1], 3), 2))
                ax.set_yticks(np.round(np.linspace(extent[3], extent[2], 3), 2))
                ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(title, fontsize=10)
            if col == 0:
                import textwrap

                ax.set_ylabel(textwrap.fill(m.name, 22), fontsize=9)
        if drawn is not None:
            bar = fig.colorbar(drawn, ax=[axes[r][col] for r in range(len(models))], shrink=0.8, location="bottom")
            bar.ax.tick_params(labelsize=7)
    return figure_uri(fig)


def positions_section(files: Sequence[str | Path], *, index: str | Path | None = None,
                      boxes_train: str | Path | None = None, seed: int = 0) -> dict[str, object]:
    """The section's values: per model (in the order given) its figures and correlations, and the figure."""
    if not files:
        return dict(NO_POSITIONS)
    models: list[_Model] = []
    trainings: dict[tuple[str, int, int], TrainingCentres | None] = {}
    for file in files:
        path = Path(file)
        table = read_table(path)
        if table.empty:
            raise InputError(f"{path} holds no image (an empty 'positions' table): run 'biasprobe positions' again")
        summary = read_json(companion(path, "summary"))
        params = summary.get("parameters") or {}
        canvas, resize = params.get("canvas"), params.get("resize_size")
        if not isinstance(canvas, int) or not isinstance(resize, int):
            raise InputError(f"{companion(path, 'summary')} does not record the canvas and resize sizes of "
                             "'biasprobe positions'; run it again")  # fmt: skip
        model = str(table["model"].iloc[0]) if "model" in table.columns else path.stem
        source = _training_source(summary, model, index, boxes_train)
        training = None
        if source is not None:
            if (source, resize, canvas) not in trainings:
                trainings[(source, resize, canvas)] = _training_from(source, resize_size=resize, canvas=canvas)
            training = trainings[(source, resize, canvas)]
        maps = position_maps(table, canvas)
        name = _label(model, path.stem) if any(m.name.split(" (")[0] == model for m in models) else model
        block = positions_block(table, canvas, training, seed=seed)
        models.append(_Model(name, maps, training.density_map(maps) if training is not None else None, block))
    rows = []
    for m in models:
        b = m.block
        rows.append({
            "model": m.name, "n": b["n"], "positions": b["positions"], "grid": f"{b['grid'][0]} x {b['grid'][1]}",
            "accuracy": fmt(b["accuracy"]), "accuracy_ci": _ci(b["accuracy_ci"]),
            "instability": fmt(b["instability"]), "instability_ci": _ci(b["instability_ci"]),
            "rho_accuracy": fmt(b["rho_density_accuracy"], 2),
            "rho_accuracy_ci": _ci(b["rho_density_accuracy_ci"], 2),
            "rho_instability": fmt(b["rho_density_instability"], 2),
            "rho_instability_ci": _ci(b["rho_density_instability_ci"], 2),
        })  # fmt: skip
    has_density = any(m.density is not None for m in models)
    return {
        "why": "", "rows": rows, "figure": positions_figure(models),
        "density_note": "" if has_density else ("No training boxes (--index with boxes, or --boxes-train): the density "
                                                "and its correlations are not shown."),
        "cell": models[0].maps.cell,
    }  # fmt: skip

