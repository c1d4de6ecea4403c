"""The 'invariance vs atypicality' section: per model and protocol the Spearman estimates, the
logistic control, the decile tables and their figures."""

from __future__ import annotations

import math

import pandas as pd

from biasprobe import analysis as an
from biasprobe.report import figures
from biasprobe.report.formatting import estimate_cells, fmt, fmt_ci

__all__ = ["analysis_block", "decile_rows", "logistic_text"]


def decile_rows(table: pd.DataFrame, column: str) -> list[dict[str, str]]:
    """A decile table's rows as cells; ``column`` names the binned axis (its min and max)."""
    rows = []
    for rec in table.to_dict("records"):
        rows.append({
            "bin": str(rec["bin"]),
            "range": f"{fmt(rec[f'{column}_min'], 2)}-{fmt(rec[f'{column}_max'], 2)}",
            "n": str(rec["n"]),
            "p_change": fmt(rec["p_change"]), "p_change_ci": fmt_ci(rec["p_change_lo"], rec["p_change_hi"]),
            "mac": fmt(rec["mac"]), "mac_ci": fmt_ci(rec["mac_lo"], rec["mac_hi"]),
            "accuracy": fmt(rec["accuracy"], 2), "accuracy_ci": fmt_ci(rec["accuracy_lo"], rec["accuracy_hi"], 2),
            "instability_ratio": fmt(rec["instability_ratio"], 2), "error_ratio": fmt(rec["error_ratio"], 2),
        })
    return rows


def logistic_text(lg: an.LogisticResult | None) -> dict[str, str] | None:
    """One sentence on the logistic accuracy and confidence control, or why it was not fitted."""
    if lg is None:
        return None
    if not lg.ok:
        return {"text": f"Not fitted: {lg.note}."}
    text = (
        f"Logit(any flip) on standardised {' and '.join(lg.covariates)}: atypicality coefficient "
        f"{lg.coef:.2f} per SD, 95% CI [{lg.ci_low:.2f}, {lg.ci_high:.2f}], p {'< 0.001' if lg.p_value < 0.001 else '= ' + fmt(lg.p_value)}"
    )
    if math.isfinite(lg.confidence_coef):
        text += f"; confidence coefficient {lg.confidence_coef:.2f}"
    return {"text": text + (f" ({lg.note})" if lg.note else "") + f"; n = {lg.n}."}


def analysis_block(res: an.ProtocolAnalysis, joined: pd.DataFrame) -> dict[str, object]:
    """The section's values for one result; ``joined`` is the table it was computed from (the scatter's dots)."""
    block: dict[str, object] = {
        "model": res.model, "protocol": res.protocol,
        "spearman": estimate_cells(res.spearman, 2), "spearman_correct": estimate_cells(res.spearman_correct, 2),
        "logistic": logistic_text(res.logistic), "deciles": decile_rows(res.deciles, "atypicality"),
        "deciles_correct": decile_rows(res.deciles_correct, "atypicality"),
        "pose_spearman": estimate_cells(res.pose_spearman, 2) if res.pose_spearman else None,
        "pose_deciles": decile_rows(res.pose_deciles, "pose_atypicality"),
        "decile_figure": "", "scatter_figure": "", "pose_figure": "", "why": "",
        "has_correct_line": not res.deciles_correct.empty,
    }
    if res.deciles.empty:
        block["why"] = "No decile plot: fewer than 2 scored images share image ids with this invariance table."
        return block
    lines = [("all images", res.deciles)]
    if not res.deciles_correct.empty:
        lines.append(("correctly classified at x0", res.deciles_correct))
    block["decile_figure"] = figures.decile_plot(lines)
    frame = joined[(joined["model"] == res.model) & (joined["protocol"] == res.protocol)].dropna(subset=["atypicality"])
    block["scatter_figure"] = figures.scatter_plot(frame["atypicality"].to_numpy(float), frame["p_change"].to_numpy(float))
    if not res.pose_deciles.empty:
        block["pose_figure"] = figures.decile_plot([("all images", res.pose_deciles)], column="pose_atypicality")
    return block
