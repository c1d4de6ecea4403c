"""Shift-distance curves (docs/protocols.md section 7.5): how often the top-1 answer differs
between two views of one image ``d`` steps apart, for d = 1..m, from the views table the
invariance stage writes (no new forward passes).

Under ``circular`` a network that pools globally and aliases only through its strides gives
the same answer to views a whole stride apart: its curve dips to 0 at multiples of the stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from biasprobe.analysis.order import protocol_order
from biasprobe.analysis.stats import ratio_estimate
from biasprobe.core.schemas import SHIFT_DISTANCE_TABLE, conform

__all__ = ["PAIRED_PROTOCOLS", "shift_distance"]

PAIRED_PROTOCOLS = ("zhang", "zhang2019")
"""Protocols whose views are independent pairs, not a sequence: they have no curve. The
catalogue's paired protocols (``invariance.catalogue.paired_protocol_names``, which this package
sits below and cannot import; a test keeps the two equal)."""


def _top1_matrix(views: pd.DataFrame) -> np.ndarray:
    """One row per image (by image_id), one column per view index; images missing a view are dropped."""
    rows = views.drop_duplicates(["image_id", "t"])
    wide = rows.pivot(index="image_id", columns="t", values="top1").sort_index()
    wide = wide.reindex(columns=range(int(rows["t"].max()) + 1)).dropna()
    return wide.to_numpy(dtype=np.int64)


def shift_distance(
    views: pd.DataFrame,
    *,
    model: str = "",
    protocols: Sequence[str] | None = None,
    max_distance: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """P(top-1 of view t differs from view t + d) for d = 1..m per sequence protocol.

    Pooled over every pair of every image (``differs / pairs``), with a 95% bootstrap CI over
    images (docs/protocols.md section 5.2). ``m`` is the views per image minus one, at most
    ``max_distance``. One row per protocol and d (``core.schemas.SHIFT_DISTANCE_TABLE``).
    """
    names = protocol_order(sorted(set(views["protocol"].astype(str)))) if protocols is None else list(protocols)
    out = []
    for name in names:
        if name in PAIRED_PROTOCOLS:
            continue
        top1 = _top1_matrix(views[views["protocol"].astype(str) == name])
        if top1.shape[0] == 0 or top1.shape[1] < 2:
            continue
        last = top1.shape[1] - 1 if max_distance is None else min(max_distance, top1.shape[1] - 1)
        for d in range(1, last + 1):
            differs = (top1[:, :-d] != top1[:, d:]).sum(axis=1)
            pairs = np.full(top1.shape[0], top1.shape[1] - d)
            estimate = ratio_estimate(differs, pairs, seed=seed)
            out.append({"model": model, "protocol": name, "d": d, "pairs": int(pairs.sum()), "differs": int(differs.sum()),
                        "p_differs": estimate.value, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high})  # fmt: skip
    return conform(pd.DataFrame(out, columns=list(SHIFT_DISTANCE_TABLE)), SHIFT_DISTANCE_TABLE)
