"""The invariance stage's dataset figures and its ``X.summary.json`` record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from biasprobe.analysis import Estimate, group_stats, prediction_spread
from biasprobe.core.records import JsonRecord
from biasprobe.invariance.catalogue import list_protocols

__all__ = ["InvarianceSummary", "summarise"]


def _ci(estimate: Estimate) -> list[float]:
    return [estimate.ci_low, estimate.ci_high]


def summarise(
    images: pd.DataFrame, *, protocols: Sequence[str], seed: int = 0, views: pd.DataFrame | None = None
) -> dict[str, dict[str, Any]]:
    """Per protocol: n, pairs, flips, P(top-1 change), MAC, consistency, accuracy, 95% CIs.

    The figures are ``analysis.group_stats`` (docs/protocols.md sections 3 and 5): P(change) =
    sum(flips) / sum(pairs), MAC = mean of all per-pair changes, bootstrap CIs over images.
    ``constant_predictions`` flags (nearly) constant answers (section 3.4; ``modal_share`` is the
    share of the answers that are the most common class). ``definition`` and ``source`` name the
    definition that produced the figures: ``biasprobe`` (docs/protocols.md) or a paper preset
    (docs/literature.md).
    """
    catalogue = {p.name: p for p in list_protocols(presets=True)}
    spread = {s.protocol: s for s in prediction_spread(images, views)}
    out: dict[str, dict[str, Any]] = {}
    for name in protocols:
        stats = group_stats(images[images["protocol"] == name], seed=seed)
        change, mac, accuracy = stats.p_change, stats.mac, stats.accuracy
        known = accuracy.n > 0
        out[name] = {
            "n": stats.n, "pairs": stats.pairs, "flips": stats.flips,
            "p_change": change.value, "p_change_ci": _ci(change),
            "mac": mac.value, "mac_ci": _ci(mac),
            "consistency": 1.0 - change.value, "consistency_ci": [1.0 - change.ci_high, 1.0 - change.ci_low],
            "accuracy": accuracy.value if known else None, "accuracy_ci": _ci(accuracy) if known else None,
            "constant_predictions": bool(name in spread and spread[name].constant),
            "modal_share": spread[name].modal_share if name in spread else None,
            "definition": catalogue[name].definition if name in catalogue else None,
            "source": catalogue[name].source if name in catalogue else None,
        }  # fmt: skip
    return out


@dataclass(frozen=True)
class InvarianceSummary(JsonRecord):
    """``X.summary.json`` of ``biasprobe invariance``."""

    FORMAT = "biasprobe.invariance"
    FORMAT_VERSION = 1

    model: dict[str, Any]
    """What the model is (``ProbeModel.describe()``)."""
    parameters: dict[str, Any]
    """Protocol geometry, batch and unit sizes, bootstrap seed, k, image count, runtime."""
    protocols: dict[str, dict[str, Any]]
    """Per protocol, the figures of ``summarise``."""
    skipped: int
    images_root: str
    """Where the tables' relative paths start (a folder, or ``builtin:photos``)."""
    versions: dict[str, str]
    command: list[str] | None
