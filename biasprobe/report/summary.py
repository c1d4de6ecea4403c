"""The summary's headline numbers and the per-protocol table, from the analysis results."""

from __future__ import annotations

from collections.abc import Iterable

from biasprobe import analysis as an
from biasprobe.report.analysed import half_row
from biasprobe.report.formatting import estimate_cells, fmt, fmt_ci

__all__ = ["headline", "protocol_rows"]


def headline(primary: an.ProtocolAnalysis) -> list[tuple[str, str]]:
    """(name, value) pairs of the first model on its primary protocol."""
    o = primary.overall
    items = [
        ("images measured", f"{o.n}"),
        (f"P(top-1 change), {primary.protocol}", f"{fmt(o.p_change.value)} {fmt_ci(o.p_change.ci_low, o.p_change.ci_high)}"),
        (f"MAC, {primary.protocol}", f"{fmt(o.mac.value)} {fmt_ci(o.mac.ci_low, o.mac.ci_high)}"),
        ("accuracy at x0", fmt(o.accuracy.value, 2)),
    ]
    if primary.spearman is not None:
        s = estimate_cells(primary.spearman, 2)
        items.append(("Spearman rho (atypicality, P(change))", f"{s['value']} {s['ci']}"))
    typical, atypical = half_row(primary, "typical"), half_row(primary, "atypical")
    if typical is not None and atypical is not None:
        items.append(("P(change) typical / atypical half", f"{fmt(typical['p_change'])} / {fmt(atypical['p_change'])}"))
    return items


def protocol_rows(results: Iterable[an.ProtocolAnalysis]) -> list[dict[str, str]]:
    """One row per (model, protocol): n, P(change), MAC, consistency (1 - P(change)), accuracy."""
    rows = []
    for r in results:
        o = r.overall
        rows.append({
            "model": r.model, "protocol": r.protocol, "n": str(o.n),
            "p_change": fmt(o.p_change.value), "p_change_ci": fmt_ci(o.p_change.ci_low, o.p_change.ci_high),
            "mac": fmt(o.mac.value), "mac_ci": fmt_ci(o.mac.ci_low, o.mac.ci_high),
            "consistency": fmt(1 - o.p_change.value),
            "accuracy": fmt(o.accuracy.value, 2), "accuracy_ci": fmt_ci(o.accuracy.ci_low, o.accuracy.ci_high, 2),
        })
    return rows
