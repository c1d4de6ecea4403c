"""The HTML bias report: one self-contained file (figures and thumbnails inline, no network).

Data flow: ``inputs`` reads the stage outputs (tables, summaries, meta.json, boxes) into a
``ReportInputs``; ``analysed`` joins and analyses them once (``AnalysedInputs``); one module
per section turns that into template values (``summary``, ``atypicality``, ``input_sections``,
``galleries``, ``fixes``, ``provenance``), with ``formatting``, ``figures`` and ``thumbnails``
as helpers; ``context`` composes the sections and ``render`` writes the HTML.
"""

from __future__ import annotations

from biasprobe.report.render import Supplement, render_html, write_report

__all__ = ["Supplement", "render_html", "write_report"]
