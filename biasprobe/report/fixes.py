"""The 'fixes' section: every model's P(top-1 change) on the typical and atypical halves of the
one atypicality axis, read from the analysis results (no second bootstrap)."""

from __future__ import annotations

import numpy as np

from biasprobe.report import figures
from biasprobe.report.analysed import AnalysedInputs, half_row
from biasprobe.report.formatting import fmt, fmt_ci

__all__ = ["fixes"]

HALVES = ("typical", "atypical")


def fixes(analysed: AnalysedInputs) -> dict[str, object]:
    """Rows per (model, protocol) and the bar figure, or why there is nothing to compare."""
    inputs = analysed.inputs
    if len(inputs.invariance) < 2:
        return {"why": "One invariance file (one model) was given; pass one per model (baseline, antialiased, "
                       "augmented) to compare fixes."}
    if inputs.scores is None:
        return {"why": "No scores table: typical and atypical halves need atypicality."}
    rows: list[dict[str, str]] = []
    bars: dict[str, list[list[object]]] = {half: [] for half in HALVES}
    for res in analysed.results:
        o = res.overall
        typical, atypical = (half_row(res, half) or {} for half in HALVES)
        rows.append({
            "model": res.model, "protocol": res.protocol, "all": fmt(o.p_change.value),
            "all_ci": fmt_ci(o.p_change.ci_low, o.p_change.ci_high),
            "typical": fmt(typical.get("p_change")), "typical_ci": fmt_ci(typical.get("p_change_lo"), typical.get("p_change_hi")),
            "atypical": fmt(atypical.get("p_change")), "atypical_ci": fmt_ci(atypical.get("p_change_lo"), atypical.get("p_change_hi")),
            "share": fmt(atypical.get("share_of_flips"), 2), "accuracy": fmt(o.accuracy.value, 2),
        })
        for half, row in zip(HALVES, (typical, atypical), strict=True):
            bars[half].append([row.get(key, np.nan) for key in ("p_change", "p_change_lo", "p_change_hi")])
    ok = any(not res.halves.empty for res in analysed.results)
    labels = [f"{res.model}\n{res.protocol}" for res in analysed.results]
    figure = figures.fixes_plot(labels, {half: np.array(v, dtype=float) for half, v in bars.items()}) if ok else ""
    return {"why": "" if ok else "No image of the invariance tables has an atypicality score.",
            "rows": rows, "figure": figure}
