"""The analysis names at their former address, for callers not yet importing them from
``biasprobe.analysis`` (the report and the demo). New code imports from the package; each
name lives in the module of its job (join, columns, groups, bins, control, protocol, tables,
verdict)."""

from __future__ import annotations

from biasprobe.analysis.bins import assign_bins, assign_halves, decile_table, halves_table
from biasprobe.analysis.columns import correct_mask
from biasprobe.analysis.control import LogisticResult, logistic_control
from biasprobe.analysis.groups import NAN_ESTIMATE, GroupStats, group_stats
from biasprobe.analysis.join import join_scores
from biasprobe.analysis.protocol import ProtocolAnalysis, analyse, analyse_protocol
from biasprobe.analysis.tables import compare_models, protocol_figures, protocol_table
from biasprobe.analysis.verdict import verdict

__all__ = [
    "NAN_ESTIMATE",
    "GroupStats",
    "LogisticResult",
    "ProtocolAnalysis",
    "analyse",
    "analyse_protocol",
    "assign_bins",
    "assign_halves",
    "compare_models",
    "correct_mask",
    "decile_table",
    "group_stats",
    "halves_table",
    "join_scores",
    "logistic_control",
    "protocol_figures",
    "protocol_table",
    "verdict",
]
