"""Rounding half up, the one rounding rule of docs/protocols.md (section 1)."""

from __future__ import annotations

import math

__all__ = ["rnd"]


def rnd(x: float) -> int:
    """Round half up: ``floor(x + 0.5)`` (never banker's rounding)."""
    return math.floor(x + 0.5)
