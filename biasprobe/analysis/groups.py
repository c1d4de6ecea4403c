"""Dataset-level figures of a group of (image, protocol) rows: P(top-1 change), MAC, accuracy.

P(top-1 change) is ``sum(flips) / sum(pairs)`` and MAC the mean of all per-pair changes
(``mac_top1`` weighted by pairs), both with images resampled; accuracy is the mean of the
known ``correct0`` values (docs/protocols.md section 5). Rows are put in image-id order
before resampling, so the CIs do not depend on the order the rows came in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from biasprobe.analysis.columns import float_values
from biasprobe.analysis.order import canonical_rows
from biasprobe.analysis.stats import Estimate, mean_estimate, ratio_estimate

__all__ = ["NAN_ESTIMATE", "GroupStats", "group_stats"]

NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0)


@dataclass(frozen=True)
class GroupStats:
    """Dataset-level figures of a group of (image, protocol) rows."""

    n: int
    p_change: Estimate
    mac: Estimate
    accuracy: Estimate
    flips: int
    pairs: int

    def to_row(self, prefix: str = "") -> dict[str, float | int]:
        """Flat columns: n, p_change, p_change_lo, p_change_hi, mac..., accuracy..."""
        row: dict[str, float | int] = {f"{prefix}n": self.n, f"{prefix}flips": self.flips, f"{prefix}pairs": self.pairs}
        for name in ("p_change", "mac", "accuracy"):
            est: Estimate = getattr(self, name)
            row[f"{prefix}{name}"] = est.value
            row[f"{prefix}{name}_lo"] = est.ci_low
            row[f"{prefix}{name}_hi"] = est.ci_high
        return row


def group_stats(frame: pd.DataFrame, *, seed: int = 0) -> GroupStats:
    """P(top-1 change) = sum(flips) / sum(pairs), MAC = mean of all per-pair changes, accuracy.

    The bootstrap resamples the rows in image-id order (``order.canonical_rows``).
    """
    frame = canonical_rows(frame)
    flips = float_values(frame["flips"]) if len(frame) else np.zeros(0)
    pairs = float_values(frame["pairs"]) if len(frame) else np.zeros(0)
    mac = float_values(frame["mac_top1"]) if len(frame) else np.zeros(0)
    p_change = ratio_estimate(flips, pairs, seed=seed)
    mac_est = ratio_estimate(mac * pairs, pairs, seed=seed)
    if "correct0" in frame.columns and len(frame):
        acc_est = mean_estimate(float_values(frame["correct0"].astype("boolean").astype("Float64")), seed=seed)
    else:
        acc_est = NAN_ESTIMATE
    return GroupStats(
        n=len(frame), p_change=p_change, mac=mac_est, accuracy=acc_est,
        flips=int(np.nansum(flips)), pairs=int(np.nansum(pairs)),
    )
