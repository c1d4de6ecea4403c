"""The summary's headline numbers, the per-protocol table and the note on x0, from the analysis results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from biasprobe import analysis as an
from biasprobe.report.analysed import half_row
from biasprobe.report.formatting import estimate_cells, fmt, fmt_ci

__all__ = ["X0_HINT", "X0_NOTE", "flag_text", "headline", "protocol_rows"]

X0_HINT = ("x0 = the protocol's first view (t = 0), not the centre crop; for crop the window at the top-left "
           "corner of the (S + m)-pixel square, m/2 pixels off the centre crop a training log evaluates")
"""A tooltip wherever 'x0' is shown."""

X0_NOTE = (
    "x0 is each protocol's first view (t = 0), not the centre crop a training script evaluates: for crop the "
    "S x S window at the top-left corner of the (S + m)-pixel square, m/2 pixels up and left of the centre crop; "
    "for black and inpaint the image pasted at the first offset on the canvas; for scale the smallest size; for "
    "circular the unrolled centre crop; for zhang the first random window. Accuracy at x0 can therefore differ "
    "from the test accuracy in a training log."
)
"""The note under the protocol table (docs/protocols.md sections 2.2 and 3.2)."""

Spreads = Mapping[tuple[str, str], an.PredictionSpread]


def headline(primary: an.ProtocolAnalysis, spread: an.PredictionSpread | None = None) -> list[tuple[str, str, str]]:
    """(name, value, tooltip) of the first model on its primary protocol; constant predictions first."""
    o = primary.overall
    items: list[tuple[str, str, str]] = []
    if spread is not None and spread.constant:
        items.append(("WARNING: predictions (nearly) constant", f"{spread.class_text}: {100 * spread.modal_share:.1f}% "
                      f"of {spread.basis}", spread.text()))
    items += [
        ("images measured", f"{o.n}", ""),
        (f"P(top-1 change), {primary.protocol}", f"{fmt(o.p_change.value)} {fmt_ci(o.p_change.ci_low, o.p_change.ci_high)}", ""),
        (f"MAC, {primary.protocol}", f"{fmt(o.mac.value)} {fmt_ci(o.mac.ci_low, o.mac.ci_high)}", ""),
        (f"accuracy at x0 (first view of {primary.protocol})", fmt(o.accuracy.value, 2), X0_HINT),
    ]
    if primary.spearman is not None:
        s = estimate_cells(primary.spearman, 2)
        items.append(("Spearman rho (atypicality, P(change))", f"{s['value']} {s['ci']}", ""))
    typical, atypical = half_row(primary, "typical"), half_row(primary, "atypical")
    if typical is not None and atypical is not None:
        items.append(("P(change) typical / atypical half", f"{fmt(typical['p_change'])} / {fmt(atypical['p_change'])}", ""))
    return items


def flag_text(spread: an.PredictionSpread | None) -> str:
    """A table cell: 'constant: class 3 on 100.0% of views', or ''."""
    if spread is None or not spread.constant:
        return ""
    return f"constant predictions: {spread.class_text} on {100 * spread.modal_share:.1f}% of {spread.basis}"


def protocol_rows(results: Iterable[an.ProtocolAnalysis], spreads: Spreads | None = None) -> list[dict[str, str]]:
    """One row per (model, protocol): n, P(change), MAC, consistency (1 - P(change)), accuracy, and
    the constant-predictions flag."""
    rows = []
    for r in results:
        o = r.overall
        rows.append({
            "model": r.model, "protocol": r.protocol, "n": str(o.n),
            "p_change": fmt(o.p_change.value), "p_change_ci": fmt_ci(o.p_change.ci_low, o.p_change.ci_high),
            "mac": fmt(o.mac.value), "mac_ci": fmt_ci(o.mac.ci_low, o.mac.ci_high),
            "consistency": fmt(1 - o.p_change.value),
            "accuracy": fmt(o.accuracy.value, 2), "accuracy_ci": fmt_ci(o.accuracy.ci_low, o.accuracy.ci_high, 2),
            "flag": flag_text((spreads or {}).get((r.model, r.protocol))),
            "definition": definition_text(r.protocol),
        })
    return rows


def definition_text(protocol: str) -> str:
    """Beside a paper preset's figures: the definition that produced them ('' for biasprobe's own)."""
    from biasprobe.invariance.catalogue import BIASPROBE, list_protocols

    known = {p.name: p for p in list_protocols(presets=True)}
    if protocol not in known or known[protocol].definition == BIASPROBE:
        return ""
    return f"{known[protocol].definition} preset: {known[protocol].source} (docs/literature.md)"
