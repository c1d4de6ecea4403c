"""Turn report inputs into the plain values the template shows (numbers, rows, figure URIs).

The inputs are analysed once (``analysed.analyse_inputs``); each section's module turns that
into its values. Every string from the data stays a plain ``str``: the template escapes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from biasprobe import __version__
from biasprobe import analysis as an
from biasprobe.report import atypicality, input_sections, layers, provenance, summary
from biasprobe.report.analysed import AnalysedInputs, analyse_inputs
from biasprobe.report.factors import NO_FACTORS, factors_section
from biasprobe.report.fixes import fixes
from biasprobe.report.galleries import gallery
from biasprobe.report.inputs import ReportInputs
from biasprobe.report.models import NO_MODELS
from biasprobe.report.positions import NO_POSITIONS

__all__ = ["build_context", "build_supplement"]

log = logging.getLogger(__name__)


NO_SCORES = ("No scores table was given (--scores, the output of 'biasprobe score'): atypicality is unknown, "
             "so instability cannot be related to it.")


def _gallery(analysed: AnalysedInputs) -> dict[str, object]:
    primary = analysed.primary
    spread = analysed.spread_of(primary)
    return gallery(analysed.inputs, primary.model, primary.protocol, warning=spread.warning() if spread else "")


def build_context(inputs: ReportInputs, *, title: str | None, seed: int, command: list[str] | None,
                  layer_files: Sequence[str | Path] = (), factors: str | Path | None = None) -> dict:
    """All values of the template, computed from the inputs (``layer_files``: outputs of 'biasprobe layers';
    ``factors``: a factor annotations file or ``imagenet-x``, joined by file name)."""
    analysed = analyse_inputs(inputs, seed=seed, progress=True)
    primary, ordered = analysed.primary, analysed.ordered
    scored = inputs.scores is not None
    layer_values = layers.layers_section(layer_files, inputs, seed=seed)
    return {
        "title": title or "biasprobe bias report",
        "version": __version__,
        "headline": summary.headline(primary, analysed.spread_of(primary)),
        "warnings": analysed.warnings(),
        "verdicts": [an.verdict(r, analysed.spread_of(r)) for r in ordered],
        "protocol_rows": summary.protocol_rows(analysed.results, analysed.spread),
        "x0_note": summary.X0_NOTE, "x0_hint": summary.X0_HINT,
        "analyses": [atypicality.analysis_block(r, analysed.joined, seed=seed, spread=analysed.spread_of(r))
                     for r in ordered] if scored else [],
        "no_scores": "" if scored else NO_SCORES,
        "boxes": input_sections.boxes(inputs),
        "gallery": _gallery(analysed),
        "fixes": fixes(analysed),
        "layers": layer_values,
        "duplicates": input_sections.duplicates(inputs.scores) if scored else {
            "why": "No scores table was given (--scores): duplicates of training images are unknown.", "rows": [], "n": 0},
        "skipped": [*input_sections.skipped(inputs), *layer_values["skipped"]],
        "provenance": [*provenance.input_provenance(inputs), *layer_values["provenance"],
                       provenance.analysis_provenance(seed=seed, command=command)],
        "supplements": [],
        "factors": factors_section(analysed, factors, seed=seed) if factors is not None else dict(NO_FACTORS),
        "positions": dict(NO_POSITIONS),  # filled by render.write_report when positions tables are given
        "models": dict(NO_MODELS),  # filled by render.write_report when several models' tables are given
    }


def build_supplement(inputs: ReportInputs, *, title: str, seed: int) -> dict:
    """A further image set shown without an atypicality axis: protocol table and gallery."""
    analysed = analyse_inputs(inputs, seed=seed)
    return {
        "title": title,
        "protocol_rows": summary.protocol_rows(analysed.results, analysed.spread),
        "warnings": analysed.warnings(),
        "gallery": _gallery(analysed),
        "skipped": input_sections.skipped(inputs),
        "provenance": provenance.input_provenance(inputs),
    }
