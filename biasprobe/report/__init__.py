"""The HTML bias report: one self-contained file (figures and thumbnails inline, no network)."""

from __future__ import annotations

from biasprobe.report.render import Supplement, render_html, write_report

__all__ = ["Supplement", "render_html", "write_report"]
