"""The layers stage's figures per protocol and probe, and its ``X.summary.json`` record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biasprobe.analysis import Estimate, mean_estimate
from biasprobe.core.records import JsonRecord
from biasprobe.layers.probes import ProbePoint
from biasprobe.layers.profile import ProbeLayout, spread

__all__ = ["LayersSummary", "probe_figures"]


def _ratio(value: float, denominator: float) -> float | None:
    if not np.isfinite(value) or not np.isfinite(denominator) or denominator <= 0:
        return None
    return float(value / denominator)


def _estimate(e: Estimate) -> dict[str, Any]:
    finite = np.isfinite(e.value)
    return {"value": float(e.value) if finite else None, "ci": [e.ci_low, e.ci_high] if finite else None, "n": e.n}


def _change_figures(rows: pd.DataFrame, spread_value: float, seed: int) -> dict[str, Any]:
    change = mean_estimate(rows["change_1"].to_numpy(dtype=float), seed=seed)
    aligned = mean_estimate(rows["change_aligned"].to_numpy(dtype=float), seed=seed)
    low, high = (_ratio(change.ci_low, spread_value), _ratio(change.ci_high, spread_value))
    return {
        "n": int(rows["image_id"].nunique()),
        "change_1": _estimate(change),
        "change_aligned": _estimate(aligned),
        "instability": {"value": _ratio(change.value, spread_value),
                        "ci": [low, high] if low is not None and high is not None else None},
    }  # fmt: skip


def probe_figures(
    table: pd.DataFrame,
    first_keys: pd.DataFrame,
    first: np.ndarray,
    layout: ProbeLayout,
    *,
    protocols: Sequence[str],
    seed: int = 0,
    halves: pd.Series | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per protocol, one entry per probe: its place, ``spread``, and the means over images of
    ``change_1`` and ``change_aligned`` with 95% bootstrap CIs, ``instability = change_1 / spread``
    (docs/protocols.md section 7). ``halves`` (image_id -> typical/atypical, section 5.5) adds the
    same figures per half, with the spread of all images."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in protocols:
        mine = first_keys["protocol"].astype(str).to_numpy() == name
        ids = first_keys.loc[mine, "image_id"].astype(str).tolist()
        entries = []
        for probe, cols in zip(layout.probes, layout.slices(), strict=True):
            rows = table[(table["protocol"] == name) & (table["probe"] == probe.name)]
            spread_value = spread(first[mine][:, cols], ids)
            entry: dict[str, Any] = {**_place(probe), "spread": spread_value if np.isfinite(spread_value) else None,
                                     **_change_figures(rows, spread_value, seed)}  # fmt: skip
            if halves is not None and len(halves):
                half = rows["image_id"].astype(str).map(halves)
                entry["halves"] = {h: _change_figures(rows[half == h], spread_value, seed) for h in ("typical", "atypical")}
            entries.append(entry)
        out[name] = entries
    return out


def _place(probe: ProbePoint) -> dict[str, Any]:
    return {"probe": probe.name, "depth": probe.depth, "stride": probe.stride, "channels": probe.channels}


@dataclass(frozen=True)
class LayersSummary(JsonRecord):
    """``X.summary.json`` of ``biasprobe layers``."""

    FORMAT = "biasprobe.layers"
    FORMAT_VERSION = 1

    model: dict[str, Any]
    """What the model is (``ProbeModel.describe()``)."""
    probes: list[dict[str, Any]]
    """The probe points in depth order (``ProbePoint.to_dict()``)."""
    total_stride: int
    """The network's total stride: the largest stride of its feature probes."""
    parameters: dict[str, Any]
    """Protocol geometry, batch and unit sizes, bootstrap seed, image count, runtime, scores file."""
    protocols: dict[str, list[dict[str, Any]]]
    """Per protocol, the figures of ``probe_figures``."""
    skipped: int
    images_root: str
    versions: dict[str, str]
    command: list[str] | None
