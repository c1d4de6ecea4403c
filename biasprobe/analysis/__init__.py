"""Relating invariance to typicality (docs/protocols.md section 5). Import analysis names from
here; the modules may move.

- ``order``: the order of images and rows (rankings and resampling depend on the data only);
- ``join``: invariance rows with the scores table's atypicality joined by image id;
- ``columns``: columns of the joined table as numpy arrays;
- ``stats``: bootstrap CIs and permutation p-values (``Estimate``);
- ``groups``: P(top-1 change), MAC and accuracy of a group of rows;
- ``bins``: deciles and halves of atypicality and their tables;
- ``control``: the logistic accuracy and confidence control;
- ``protocol``: all of the above for one model and one protocol (``analyse``);
- ``tables``: tables over every (model, protocol): protocols, fixes, headline figures;
- ``degenerate``: models whose predictions are (nearly) constant;
- ``verdict``: the plain-language verdict of one protocol's analysis;
- ``shift_distance``: P(top-1 differs) between views d steps apart, from a views table;
- ``factors``: human factor annotations (ImageNet-X) joined by file name, per factor figures, the AUC;
- ``models_compare``: several models on the same images: accuracy, P(top-1 change), consistency.
"""

from biasprobe.analysis.bins import assign_bins, assign_halves, decile_table, halves_table
from biasprobe.analysis.columns import correct_mask
from biasprobe.analysis.control import LogisticResult, logistic_control
from biasprobe.analysis.degenerate import (
    CONSTANT_SHARE,
    PredictionSpread,
    constant_predictions,
    model_warnings,
    prediction_spread,
)
from biasprobe.analysis.factors import (
    IMAGENET_X,
    POSE_SIZE_FACTORS,
    FactorAnalysis,
    FactorTable,
    analyse_factors,
    auc_estimate,
    join_factors,
    read_factors,
)
from biasprobe.analysis.groups import NAN_ESTIMATE, GroupStats, group_stats
from biasprobe.analysis.join import join_scores
from biasprobe.analysis.models_compare import accuracy_consistency_answer, compare_model_tables
from biasprobe.analysis.order import PROTOCOL_ORDER, protocol_order, rank_order
from biasprobe.analysis.protocol import ProtocolAnalysis, analyse, analyse_protocol
from biasprobe.analysis.shift_distance import PAIRED_PROTOCOLS, shift_distance
from biasprobe.analysis.stats import (
    N_BOOTSTRAP,
    N_PERMUTATIONS,
    Estimate,
    mean_estimate,
    ratio_estimate,
    spearman_estimate,
)
from biasprobe.analysis.tables import compare_models, protocol_figures, protocol_table
from biasprobe.analysis.verdict import verdict

__all__ = [
    "CONSTANT_SHARE", "IMAGENET_X", "NAN_ESTIMATE", "N_BOOTSTRAP", "N_PERMUTATIONS", "PAIRED_PROTOCOLS",
    "POSE_SIZE_FACTORS", "PROTOCOL_ORDER", "Estimate", "FactorAnalysis", "FactorTable", "GroupStats",
    "LogisticResult", "PredictionSpread", "ProtocolAnalysis", "accuracy_consistency_answer", "analyse",
    "analyse_factors", "analyse_protocol", "assign_bins", "assign_halves", "auc_estimate", "compare_model_tables",
    "compare_models", "constant_predictions", "correct_mask", "decile_table", "group_stats", "halves_table",
    "join_factors", "join_scores", "logistic_control", "mean_estimate", "model_warnings", "prediction_spread",
    "protocol_figures", "protocol_order", "protocol_table", "rank_order", "ratio_estimate", "read_factors",
    "shift_distance", "spearman_estimate", "verdict",
]  # fmt: skip
