"""The positions stage's figures and its ``X.summary.json`` record (docs/protocols.md section 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biasprobe.analysis.stats import Estimate, ratio_estimate
from biasprobe.core.records import JsonRecord
from biasprobe.positions.maps import TrainingCentres, density_correlations, position_maps

__all__ = ["PositionsSummary", "positions_block"]


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _ci(estimate: Estimate) -> list[float | None] | None:
    lo, hi = _number(estimate.ci_low), _number(estimate.ci_high)
    return None if lo is None and hi is None else [lo, hi]


def positions_block(table: pd.DataFrame, canvas: int, training: TrainingCentres | None, *, seed: int = 0) -> dict[str, Any]:
    """The figures of one positions table: ``n`` images, the map ``grid`` [across, down],
    accuracy and instability over every position (with CIs over images), and the two density
    correlations with their CIs (None without training boxes)."""
    per_image = table.assign(
        labelled=table["correct"].notna(), hit=table["correct"].fillna(False).astype(bool)
    ).groupby("image_id", sort=True)[["labelled", "hit", "flips", "pairs"]].sum()
    accuracy = ratio_estimate(per_image["hit"].to_numpy(float), per_image["labelled"].to_numpy(float), seed=seed)
    instability = ratio_estimate(per_image["flips"].to_numpy(float), per_image["pairs"].to_numpy(float), seed=seed)
    maps = position_maps(table, canvas)
    block: dict[str, Any] = {
        "n": len(per_image), "positions": len(table), "grid": list(maps.grid), "cell": maps.cell,
        "accuracy": _number(accuracy.value), "accuracy_ci": _ci(accuracy),
        "instability": _number(instability.value), "instability_ci": _ci(instability),
        "rho_density_accuracy": None, "rho_density_accuracy_ci": None,
        "rho_density_instability": None, "rho_density_instability_ci": None,
    }  # fmt: skip
    if training is not None:
        rho = density_correlations(maps, training.density_map(maps), seed=seed)
        for key in ("accuracy", "instability"):
            block[f"rho_density_{key}"] = _number(rho[key].value)
            block[f"rho_density_{key}_ci"] = _ci(rho[key])
        block["training_boxes"] = len(training.centres)
        block["training_source"] = training.source
    return block


@dataclass(frozen=True)
class PositionsSummary(JsonRecord):
    """``X.summary.json`` of ``biasprobe positions``."""

    FORMAT = "biasprobe.positions"
    FORMAT_VERSION = 1

    model: dict[str, Any]
    """What the model is (``ProbeModel.describe()``)."""
    parameters: dict[str, Any]
    """Canvas, embed and resize sizes, step, batch and unit sizes, seed, image count, runtime."""
    positions: dict[str, Any]
    """The figures of ``positions_block``."""
    skipped: int
    images_root: str
    versions: dict[str, str]
    command: list[str] | None
