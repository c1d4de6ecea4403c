"""The HTML bias report: one self-contained file (figures and thumbnails inline, no network)."""

from __future__ import annotations

from .render import render_html, write_report

__all__ = ["render_html", "write_report"]
