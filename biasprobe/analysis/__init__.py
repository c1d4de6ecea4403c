"""Relating invariance to typicality: bootstrap statistics, deciles, halves, logistic control
(docs/protocols.md section 5). Import analysis names from here; the modules may move."""

from biasprobe.analysis.relate import (
    NAN_ESTIMATE,
    GroupStats,
    LogisticResult,
    ProtocolAnalysis,
    analyse,
    analyse_protocol,
    assign_bins,
    assign_halves,
    compare_models,
    correct_mask,
    decile_table,
    group_stats,
    halves_table,
    join_scores,
    logistic_control,
    protocol_figures,
    protocol_table,
    verdict,
)
from biasprobe.analysis.stats import (
    N_BOOTSTRAP,
    N_PERMUTATIONS,
    Estimate,
    mean_estimate,
    ratio_estimate,
    spearman_estimate,
)

__all__ = [
    "NAN_ESTIMATE", "N_BOOTSTRAP", "N_PERMUTATIONS", "Estimate", "GroupStats", "LogisticResult",
    "ProtocolAnalysis", "analyse", "analyse_protocol", "assign_bins", "assign_halves", "compare_models",
    "correct_mask", "decile_table", "group_stats", "halves_table", "join_scores", "logistic_control",
    "mean_estimate", "protocol_figures", "protocol_table", "ratio_estimate", "spearman_estimate", "verdict",
]  # fmt: skip
