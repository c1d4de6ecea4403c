"""Tables over every (model, protocol) of the invariance rows: the protocol table, the
typical/atypical comparison of models ("fixes"), and one protocol's headline figures."""

from __future__ import annotations

import pandas as pd

from biasprobe.analysis.bins import assign_halves, halves_table
from biasprobe.analysis.columns import float_values
from biasprobe.analysis.groups import group_stats
from biasprobe.analysis.join import join_scores
from biasprobe.analysis.stats import spearman_estimate
from biasprobe.core.errors import InputError

__all__ = ["compare_models", "protocol_figures", "protocol_table"]


def protocol_table(invariance: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per (model, protocol): n, P(change), MAC, accuracy with CIs, consistency."""
    joined = join_scores(None, invariance)
    rows = []
    for (model, protocol), group in joined.groupby(["model", "protocol"], sort=False):
        stats = group_stats(group, seed=seed)
        row: dict[str, object] = {"model": model, "protocol": protocol, **stats.to_row()}
        row["consistency"] = 1 - stats.p_change.value
        rows.append(row)
    return pd.DataFrame(rows)


def compare_models(scores: pd.DataFrame, invariance: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Fixes: per (model, protocol), P(change) on the typical and atypical halves of one axis."""
    joined = join_scores(scores, invariance)
    halves = assign_halves(scores)
    rows = []
    for (model, protocol), group in joined.groupby(["model", "protocol"], sort=False):
        table = halves_table(group, halves, seed=seed)
        row: dict[str, object] = {"model": model, "protocol": protocol}
        row.update(group_stats(group, seed=seed).to_row("all_"))
        for rec in table.to_dict("records"):
            half = rec["half"]
            for key in ("n", "p_change", "p_change_lo", "p_change_hi", "share_of_flips"):
                row[f"{half}_{key}"] = rec[key]
        rows.append(row)
    return pd.DataFrame(rows)


def protocol_figures(scores_df: pd.DataFrame | None, invariance_df: pd.DataFrame, protocol: str) -> dict[str, object]:
    """Headline figures of one protocol (the first model in the table) for the demo summary."""
    joined = join_scores(scores_df, invariance_df)
    frame = joined[joined["protocol"] == protocol]
    if frame.empty:
        raise InputError(f"no rows for protocol {protocol!r}; the table has {sorted(joined['protocol'].unique())}")
    frame = frame[frame["model"] == frame["model"].iloc[0]]
    stats = group_stats(frame)
    out: dict[str, object] = {
        "n": stats.n,
        "p_change": stats.p_change.value,
        "p_change_ci": [stats.p_change.ci_low, stats.p_change.ci_high],
        "mac": stats.mac.value,
        "accuracy": stats.accuracy.value,
        "spearman_rho": None,
        "spearman_ci": None,
        "typical_half": None,
        "atypical_half": None,
    }
    if scores_df is not None:
        rho = spearman_estimate(float_values(frame["atypicality"]), float_values(frame["p_change"]))
        out["spearman_rho"] = rho.value
        out["spearman_ci"] = [rho.ci_low, rho.ci_high]
        halves = halves_table(frame, assign_halves(scores_df))
        for rec in halves.to_dict("records"):
            out[f"{rec['half']}_half"] = {"p_change": rec["p_change"], "n": int(rec["n"])}
    return out
