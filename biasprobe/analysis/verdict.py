"""The plain-language verdict of one protocol's analysis: is instability concentrated on
atypical images, how strongly, how sure, and does it survive the accuracy and confidence
control."""

from __future__ import annotations

import math

import pandas as pd

from biasprobe.analysis.degenerate import PredictionSpread
from biasprobe.analysis.protocol import ProtocolAnalysis

__all__ = ["verdict"]


def _strength(rho: float) -> str:
    a = abs(rho)
    return "negligible" if a < 0.1 else "weak" if a < 0.3 else "moderate" if a < 0.5 else "strong"


def _p_text(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p not computed"
    return "permutation p < 0.001" if p < 0.001 else f"permutation p = {p:.3f}"


def _tenths_text(deciles: pd.DataFrame) -> str:
    """'the most atypical tenth changes its top-1 answer 5.0x as often as the most typical tenth'."""
    if deciles.empty or len(deciles) < 2:
        return ""
    lo, hi = float(deciles["p_change"].iloc[0]), float(deciles["p_change"].iloc[-1])
    k = len(deciles)
    part = "tenth" if k == 10 else f"1/{k}"
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return ""
    if lo > 0:
        return (
            f"the most atypical {part} changes its top-1 answer {hi / lo:.1f}x as often as the most typical "
            f"{part} ({100 * hi:.1f}% vs {100 * lo:.1f}% of shifts)"
        )
    return f"the most atypical {part} changes its top-1 answer on {100 * hi:.1f}% of shifts, the most typical {part} on none"


def verdict(result: ProtocolAnalysis, spread: PredictionSpread | None = None) -> str:
    """A plain-language verdict: is instability concentrated on atypical images, how strongly,
    how sure, and does it hold after the accuracy and confidence control. With the protocol's
    ``spread``, constant predictions are said first."""
    rho = result.spearman
    head = f"{result.model}, protocol {result.protocol}: "
    if spread is not None and spread.constant:
        head += (f"WARNING: the predictions are (nearly) constant: {spread.text()}; the figures below say "
                 "nothing about shift invariance. ")
    if rho is None:
        return head + "no typicality scores were given, so instability cannot be related to atypicality."
    if not math.isfinite(rho.value):
        return head + (
            f"the rank correlation cannot be computed (n = {rho.n}, or atypicality or P(top-1 change) "
            "does not vary), so there is no evidence either way."
        )
    ci = f"Spearman rho {rho.value:.2f}, 95% CI {rho.ci_low:.2f} to {rho.ci_high:.2f}, {_p_text(rho.p_value)}, n = {rho.n}"
    tenths = _tenths_text(result.deciles)
    if rho.ci_low > 0:
        first = f"Instability is concentrated on atypical images ({_strength(rho.value)} effect)"
        first += f": {tenths} ({ci})." if tenths else f" ({ci})."
    elif rho.ci_high < 0:
        first = f"Instability is concentrated on TYPICAL images, the opposite of the photographer's-bias pattern ({ci})."
    else:
        first = f"No evidence that instability is concentrated on atypical images: the CI includes 0 ({ci})."
    parts = [head + first]
    lg = result.logistic
    if lg is not None and lg.ok:
        coef = f"logistic coefficient of atypicality {lg.coef:.2f} per SD, 95% CI {lg.ci_low:.2f} to {lg.ci_high:.2f}"
        if lg.ci_low > 0:
            parts.append(f"The effect holds after controlling for confidence ({coef}).")
        elif lg.ci_high < 0:
            parts.append(f"After controlling for confidence, atypical images flip LESS often ({coef}).")
        else:
            parts.append(f"After controlling for confidence there is no evidence of an effect ({coef}: includes 0).")
    elif lg is not None:
        parts.append(f"The logistic confidence control could not be fitted: {lg.note}.")
    rc = result.spearman_correct
    if rc is not None and math.isfinite(rc.value):
        within = f"rho {rc.value:.2f}, CI {rc.ci_low:.2f} to {rc.ci_high:.2f}, n = {rc.n}"
        if rc.ci_low > 0:
            parts.append(f"Within correctly classified images it remains ({within}).")
        else:
            parts.append(f"Within correctly classified images there is no clear evidence ({within}).")
    return " ".join(parts)
