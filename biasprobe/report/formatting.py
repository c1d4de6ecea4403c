"""Numbers as the report's tables show them: fixed digits, 'n/a' for missing, '[lo, hi]' CIs."""

from __future__ import annotations

import math

from biasprobe.analysis import Estimate

__all__ = ["estimate_cells", "fmt", "fmt_ci", "p_text"]


def fmt(value: object, digits: int = 3) -> str:
    """A number for a table: fixed digits, 'n/a' for missing."""
    if value is None:
        return "n/a"
    try:
        v = float(value)  # type: ignore[arg-type]  # any value: what float() refuses is shown as text
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "n/a"
    if v.is_integer() and abs(v) >= 1 and digits == 0:
        return f"{int(v)}"
    return f"{v:.{digits}f}"


def fmt_ci(lo: object, hi: object, digits: int = 3) -> str:
    """'[lo, hi]' or '' when the CI is unknown."""
    a, b = fmt(lo, digits), fmt(hi, digits)
    return "" if a == "n/a" or b == "n/a" else f"[{a}, {b}]"


def p_text(p: float) -> str:
    """A p-value: '< 0.001' below that, else three digits."""
    return "< 0.001" if p < 0.001 else fmt(p)


def estimate_cells(e: Estimate | None, digits: int = 3) -> dict[str, str]:
    """An estimate's value, CI, p-value and n as table cells ('n/a' and blanks when unknown)."""
    if e is None:
        return {"value": "n/a", "ci": "", "p": ""}
    p = "" if e.p_value is None else p_text(e.p_value)
    return {"value": fmt(e.value, digits), "ci": fmt_ci(e.ci_low, e.ci_high, digits), "p": p, "n": str(e.n)}
