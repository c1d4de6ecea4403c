"""The report's inputs analysed once: the invariance rows joined to the scores, and section 5
(docs/protocols.md) per model and protocol. Every section reads these values; none repeats a
join or a bootstrap."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from biasprobe import analysis as an
from biasprobe.report.inputs import ReportInputs

__all__ = ["PREFERRED_PROTOCOLS", "AnalysedInputs", "analyse_inputs", "half_row", "primary_protocol"]

log = logging.getLogger(__name__)

PREFERRED_PROTOCOLS = an.PROTOCOL_ORDER


def primary_protocol(protocols: list[str]) -> str:
    """The protocol the headline uses: crop (the paper's main one) when present, else the first."""
    for name in PREFERRED_PROTOCOLS:
        if name in protocols:
            return name
    return protocols[0]


@dataclass(frozen=True, eq=False)
class AnalysedInputs:
    """One report's inputs with what the analysis made of them.

    ``results`` holds one ``ProtocolAnalysis`` per (model, protocol) in table order (its
    ``overall`` is also the protocol table's row, its ``halves`` the fixes table's);
    ``primary`` is the one the headline and the gallery show: the first model on its
    primary protocol. ``spread`` holds how the top-1 answers spread over the classes per
    (model, protocol) (``analysis.prediction_spread``: the constant-predictions flag).
    """

    inputs: ReportInputs
    joined: pd.DataFrame
    results: tuple[an.ProtocolAnalysis, ...]
    primary: an.ProtocolAnalysis
    spread: Mapping[tuple[str, str], an.PredictionSpread]

    def spread_of(self, result: an.ProtocolAnalysis) -> an.PredictionSpread | None:
        return self.spread.get((result.model, result.protocol))

    def warnings(self) -> list[str]:
        """One line per model whose predictions are constant on some protocol, primary first."""
        return an.model_warnings(s for r in self.ordered if (s := self.spread_of(r)) is not None)

    @property
    def ordered(self) -> tuple[an.ProtocolAnalysis, ...]:
        """``primary`` first, then the others in table order."""
        return (self.primary, *(r for r in self.results if r is not self.primary))


def analyse_inputs(inputs: ReportInputs, *, seed: int, progress: bool = False) -> AnalysedInputs:
    """Join once, then analyse every (model, protocol) of the invariance rows (``analysis.analyse``
    on the one joined table)."""
    joined = an.join_scores(inputs.scores, inputs.combined)
    pairs = list(joined[["model", "protocol"]].drop_duplicates().itertuples(index=False))
    results = tuple(
        an.analyse_protocol(joined, inputs.scores, model=str(m), protocol=str(p), seed=seed)
        for m, p in tqdm(pairs, desc="analysis", unit="protocol", disable=not progress or len(pairs) < 2)
    )
    main_model = inputs.invariance[0].model
    main_protocol = primary_protocol(list(dict.fromkeys(joined["protocol"].astype(str))))
    primary = next((r for r in results if r.model == main_model and r.protocol == main_protocol), results[0])
    spread = {(s.model, s.protocol): s for inv in inputs.invariance for s in an.prediction_spread(inv.table, inv.views)}
    return AnalysedInputs(inputs, joined, results, primary, spread)


def half_row(result: an.ProtocolAnalysis, half: str) -> Mapping[str, object] | None:
    """The ``halves`` row of 'typical' or 'atypical', or None when there are no halves."""
    if result.halves.empty:
        return None
    rows = result.halves[result.halves["half"] == half].to_dict("records")
    return rows[0] if rows else None
