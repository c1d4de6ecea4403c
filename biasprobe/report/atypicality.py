"""The 'invariance vs atypicality' section: per model and protocol the Spearman estimates, the
logistic control, the decile tables and their figures.

Deciles rank the images by atypicality with ties broken by kNN distance (docs/protocols.md
section 5.4), so each decile shows both ranges; the scatter puts kNN distance on its x axis
because atypicality saturates at 1 for every image farther than all training images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from biasprobe import analysis as an
from biasprobe.report import figures
from biasprobe.report.formatting import estimate_cells, fmt, fmt_ci

__all__ = ["SCATTER_JITTER", "analysis_block", "decile_rows", "logistic_text", "scatter_jitter"]

SCATTER_JITTER = 0.02
"""The largest vertical jitter of the scatter's dots (a quarter of a step of P(change) when smaller)."""


def scatter_jitter(pairs: pd.Series) -> float:
    """Half-width of the scatter's vertical jitter: ``SCATTER_JITTER``, or a quarter of the
    smallest step of P(change) (1 / the largest number of pairs) when that is smaller."""
    most = float(pd.to_numeric(pairs, errors="coerce").max()) if len(pairs) else float("nan")
    return min(SCATTER_JITTER, 0.25 / most) if math.isfinite(most) and most > 0 else SCATTER_JITTER


def _range(rec: dict, column: str, digits: int = 3) -> str:
    lo, hi = rec.get(f"{column}_min"), rec.get(f"{column}_max")
    return "n/a" if lo is None or hi is None else f"{fmt(lo, digits)}-{fmt(hi, digits)}"


def decile_rows(table: pd.DataFrame, column: str) -> list[dict[str, str]]:
    """A decile table's rows as cells; ``column`` names the binned axis (its min and max)."""
    rows = []
    for rec in table.to_dict("records"):
        rows.append({
            "bin": str(rec["bin"]),
            "range": _range(rec, column), "knn_range": _range(rec, "knn_dist"),
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


def analysis_block(
    res: an.ProtocolAnalysis, joined: pd.DataFrame, *, seed: int, spread: an.PredictionSpread | None = None
) -> dict[str, object]:
    """The section's values for one result; ``joined`` is the table it was computed from (the
    scatter's dots, in its image-id order); ``spread`` adds the constant-predictions warning."""
    block: dict[str, object] = {
        "model": res.model, "protocol": res.protocol,
        "spearman": estimate_cells(res.spearman, 2), "spearman_correct": estimate_cells(res.spearman_correct, 2),
        "logistic": logistic_text(res.logistic), "deciles": decile_rows(res.deciles, "atypicality"),
        "deciles_correct": decile_rows(res.deciles_correct, "atypicality"),
        "has_knn": "knn_dist_min" in res.deciles.columns,
        "pose_spearman": estimate_cells(res.pose_spearman, 2) if res.pose_spearman else None,
        "pose_deciles": decile_rows(res.pose_deciles, "pose_atypicality"),
        "decile_figure": "", "scatter_figure": "", "pose_figure": "", "why": "", "jitter": "",
        "scatter_axis": "", "has_correct_line": not res.deciles_correct.empty,
        "warning": spread.warning() if spread is not None else "",
    }
    if res.deciles.empty:
        block["why"] = "No decile plot: fewer than 2 scored images share image ids with this invariance table."
        return block
    lines = [("all images", res.deciles)]
    if not res.deciles_correct.empty:
        lines.append(("correctly classified at x0", res.deciles_correct))
    block["decile_figure"] = figures.decile_plot(lines)
    frame = joined[(joined["model"] == res.model) & (joined["protocol"] == res.protocol)].dropna(subset=["atypicality"])
    jitter = scatter_jitter(frame["pairs"])
    atyp = frame["atypicality"].to_numpy(float)
    knn = pd.to_numeric(frame["knn_dist"], errors="coerce").to_numpy(float) if "knn_dist" in frame else None
    if knn is not None and np.isfinite(knn).all():
        saturated = knn[atyp >= 1]
        block["scatter_figure"] = figures.scatter_plot(
            knn, frame["p_change"].to_numpy(float), seed=seed, jitter=jitter,
            xlabel="kNN distance to the training set (mean of k)",
            saturated_from=float(saturated.min()) if saturated.size else None,
        )
        block["scatter_axis"] = "kNN distance"
    else:
        block["scatter_figure"] = figures.scatter_plot(
            atyp, frame["p_change"].to_numpy(float), seed=seed, jitter=jitter,
            xlabel="atypicality (0 = most typical, 1 = most atypical)",
        )
        block["scatter_axis"] = "atypicality (no kNN distances in the scores table)"
    block["jitter"] = fmt(jitter)
    if not res.pose_deciles.empty:
        block["pose_figure"] = figures.decile_plot([("all images", res.pose_deciles)], column="pose_atypicality")
    return block
