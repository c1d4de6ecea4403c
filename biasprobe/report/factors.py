"""The 'human factors' section: ImageNet-X (or any) factor annotations joined to the primary
model and protocol by file name (``analysis.factors``): per factor, images flagged, P(top-1
change) and mean atypicality with 95% CIs, and the AUC of atypicality separating images flagged
with a pose or size factor from the rest, with a sentence saying what it means."""

from __future__ import annotations

from pathlib import Path

from biasprobe import analysis as an
from biasprobe.report.analysed import AnalysedInputs
from biasprobe.report.formatting import fmt, fmt_ci

__all__ = ["NO_FACTORS", "factors_section"]

NO_FACTORS = {"why": "No factor annotations were given (--factors FILE or --factors imagenet-x): the human "
                     "judgements of pose, size, background and the rest are not compared.", "rows": []}


def factors_section(analysed: AnalysedInputs, spec: str | Path, *, seed: int = 0) -> dict:
    """The section's plain values for the report's first model on its primary protocol."""
    table = an.read_factors(spec)
    primary = analysed.primary
    joined = analysed.joined
    rows = joined[(joined["model"].astype(str) == primary.model) & (joined["protocol"].astype(str) == primary.protocol)]
    result = an.analyse_factors(rows, table, seed=seed)
    out: dict = {
        "why": "",
        "source": table.source,
        "model": primary.model,
        "protocol": primary.protocol,
        "join": result.join.describe(),
        "ignored": ", ".join(result.ignored),
        "rows": [],
        "auc": fmt(result.auc.value),
        "auc_ci": fmt_ci(result.auc.ci_low, result.auc.ci_high),
        "auc_n": result.auc.n,
        "auc_flagged": result.auc_flagged,
        "auc_factors": result.auc_factors_text,
        "auc_sentence": result.auc_sentence(),
    }
    if not result.join.matched:
        out["why"] = f"No image of the tables has an annotation in {table.source}: {result.join.describe()}."
        return out
    for r in result.rows:
        out["rows"].append({
            "factor": r.factor, "n": r.n, "share": fmt(r.share),
            "p_change": fmt(r.p_change.value), "p_change_ci": fmt_ci(r.p_change.ci_low, r.p_change.ci_high),
            "atypicality": fmt(r.atypicality.value), "atypicality_ci": fmt_ci(r.atypicality.ci_low, r.atypicality.ci_high),
        })
    return out
