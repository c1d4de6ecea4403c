"""Turn report inputs into the plain values the template shows (numbers, rows, figure URIs).

The inputs are analysed once (``analysed.analyse_inputs``); each section's module turns that
into its values. Every string from the data stays a plain ``str``: the template escapes it.
"""

from __future__ import annotations

import logging

from biasprobe import __version__
from biasprobe import analysis as an
from biasprobe.report import atypicality, input_sections, provenance, summary
from biasprobe.report.analysed import analyse_inputs
from biasprobe.report.fixes import fixes
from biasprobe.report.galleries import gallery
from biasprobe.report.inputs import ReportInputs

__all__ = ["build_context", "build_supplement"]

log = logging.getLogger(__name__)


def build_context(inputs: ReportInputs, *, title: str | None, seed: int, command: list[str] | None) -> dict:
    """All values of the template, computed from the inputs."""
    analysed = analyse_inputs(inputs, seed=seed, progress=True)
    primary, ordered = analysed.primary, analysed.ordered
    return {
        "title": title or "biasprobe bias report",
        "version": __version__,
        "headline": summary.headline(primary),
        "verdicts": [an.verdict(r) for r in ordered],
        "protocol_rows": summary.protocol_rows(analysed.results),
        "analyses": [atypicality.analysis_block(r, analysed.joined) for r in ordered] if inputs.scores is not None else [],
        "no_scores": "" if inputs.scores is not None else "No scores table was given: atypicality is unknown.",
        "boxes": input_sections.boxes(inputs),
        "gallery": gallery(inputs, primary.model, primary.protocol),
        "fixes": fixes(analysed),
        "duplicates": input_sections.duplicates(inputs.scores),
        "skipped": input_sections.skipped(inputs),
        "provenance": [*provenance.input_provenance(inputs), provenance.analysis_provenance(seed=seed, command=command)],
        "supplements": [],
    }


def build_supplement(inputs: ReportInputs, *, title: str, seed: int) -> dict:
    """A further image set shown without an atypicality axis: protocol table and gallery."""
    analysed = analyse_inputs(inputs, seed=seed)
    return {
        "title": title,
        "protocol_rows": summary.protocol_rows(analysed.results),
        "gallery": gallery(inputs, analysed.primary.model, analysed.primary.protocol),
        "skipped": input_sections.skipped(inputs),
        "provenance": provenance.input_provenance(inputs),
    }
