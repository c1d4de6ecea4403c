"""Numbers as the report's tables show them (fixed digits, 'n/a' for missing, '[lo, hi]' CIs) and
file names as image cards show them (whole segments, long ones shortened in the middle)."""

from __future__ import annotations

import math
import re

from biasprobe.analysis import Estimate

__all__ = ["NAME_CHARS", "estimate_cells", "fmt", "fmt_ci", "p_text", "path_parts", "shorten_middle"]

NAME_CHARS = 26
"""The longest path segment an image card shows whole (about the width of its text column)."""


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


def shorten_middle(name: str, limit: int = NAME_CHARS) -> str:
    """``name`` when it fits in ``limit`` characters, else its start, an ellipsis and its end, the
    extension kept: 'IMG_20190621_123456_long_name.jpeg' -> 'IMG_201906…ng_name.jpeg'."""
    if len(name) <= limit:
        return name
    dot = name.rfind(".")
    ext = name[dot:] if dot > 0 and len(name) - dot <= 6 else ""
    stem = name[: len(name) - len(ext)]
    room = max(limit - 1 - len(ext), 2)
    head = (room + 1) // 2
    return f"{stem[:head]}\u2026{stem[len(stem) - (room - head):]}{ext}"


def path_parts(path: str, limit: int = NAME_CHARS) -> list[str]:
    """A path cut after each separator ('/' or '\\'), each segment shortened by ``shorten_middle``:
    the card lets a line break only between segments, never inside a name."""
    parts = [p for p in re.split(r"(?<=[/\\])", path) if p]
    return [shorten_middle(p[:-1], limit) + p[-1] if p[-1] in "/\\" else shorten_middle(p, limit) for p in parts]
