"""The 'fixes' section: every model's P(top-1 change) on the typical and atypical halves of the
one atypicality axis, read from the analysis results (no second bootstrap)."""

from __future__ import annotations

from biasprobe import analysis as an
from biasprobe.report import figures
from biasprobe.report.analysed import AnalysedInputs, half_row
from biasprobe.report.formatting import fmt, fmt_ci
from biasprobe.report.summary import flag_text

__all__ = ["fixes"]

HALVES = ("typical", "atypical")


def fixes(analysed: AnalysedInputs) -> dict[str, object]:
    """Rows per (model, protocol) and the small-multiples figure, or why there is nothing to compare."""
    inputs = analysed.inputs
    if len(inputs.invariance) < 2:
        return {"why": "One invariance file (one model) was given; pass one per model (baseline, antialiased, "
                       "augmented) to compare fixes."}
    if inputs.scores is None:
        return {"why": "No scores table (--scores): the typical and atypical halves need atypicality."}
    rows: list[dict[str, str]] = []
    values: dict[tuple[str, str], dict[str, tuple[float, ...]]] = {}
    flagged = set()
    for res in analysed.results:
        o = res.overall
        typical, atypical = (half_row(res, half) or {} for half in HALVES)
        spread = analysed.spread_of(res)
        rows.append({
            "model": res.model, "protocol": res.protocol, "all": fmt(o.p_change.value),
            "all_ci": fmt_ci(o.p_change.ci_low, o.p_change.ci_high),
            "typical": fmt(typical.get("p_change")), "typical_ci": fmt_ci(typical.get("p_change_lo"), typical.get("p_change_hi")),
            "atypical": fmt(atypical.get("p_change")), "atypical_ci": fmt_ci(atypical.get("p_change_lo"), atypical.get("p_change_hi")),
            "share": fmt(atypical.get("share_of_flips"), 2), "accuracy": fmt(o.accuracy.value, 2),
            "flag": flag_text(spread),
        })
        values[(res.model, res.protocol)] = {
            half: tuple(float(row.get(key, float("nan"))) for key in ("p_change", "p_change_lo", "p_change_hi"))  # type: ignore[arg-type]  # numbers of the halves table
            for half, row in zip(HALVES, (typical, atypical), strict=True)
        }
        if spread is not None and spread.constant:
            flagged.add((res.model, res.protocol))
    ok = any(not res.halves.empty for res in analysed.results)
    models = list(dict.fromkeys(res.model for res in analysed.results))
    protocols = an.protocol_order([res.protocol for res in analysed.results])
    figure = figures.fixes_plot(models, protocols, values, flagged=frozenset(flagged)) if ok else ""
    return {"why": "" if ok else "No image of the invariance tables has an atypicality score.",
            "rows": rows, "figure": figure}
