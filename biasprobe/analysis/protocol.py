"""Section 5 of docs/protocols.md for one model and one protocol: the Spearman rho of
atypicality vs ``p_change`` (bootstrap CI, permutation p-value), deciles, halves, the same
within correctly classified images, the logistic control, and pose atypicality when boxes
were scored."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from biasprobe.analysis.bins import assign_bins, assign_halves, decile_table, halves_table
from biasprobe.analysis.columns import correct_mask, float_values
from biasprobe.analysis.control import LogisticResult, logistic_control
from biasprobe.analysis.groups import GroupStats, group_stats
from biasprobe.analysis.join import join_scores
from biasprobe.analysis.stats import Estimate, spearman_estimate
from biasprobe.core.io import read_table

__all__ = ["ProtocolAnalysis", "analyse", "analyse_protocol"]


@dataclass(frozen=True, eq=False)
class ProtocolAnalysis:
    """Everything section 5 computes for one model and one protocol."""

    model: str
    protocol: str
    overall: GroupStats
    spearman: Estimate | None
    spearman_correct: Estimate | None
    deciles: pd.DataFrame
    deciles_correct: pd.DataFrame
    halves: pd.DataFrame
    logistic: LogisticResult | None
    pose_spearman: Estimate | None = None
    pose_deciles: pd.DataFrame = field(default_factory=pd.DataFrame)


def _spearman(frame: pd.DataFrame, column: str, *, seed: int) -> Estimate | None:
    if column not in frame.columns:
        return None
    return spearman_estimate(float_values(frame[column]), float_values(frame["p_change"]), seed=seed)


def analyse_protocol(
    joined: pd.DataFrame,
    scores: pd.DataFrame | None,
    *,
    model: str,
    protocol: str,
    bins: int = 10,
    seed: int = 0,
) -> ProtocolAnalysis:
    """Section 5 for the rows of one model and one protocol of a joined table."""
    frame = joined[(joined["model"] == model) & (joined["protocol"] == protocol)]
    overall = group_stats(frame, seed=seed)
    if scores is None or "atypicality" not in frame.columns:
        empty = pd.DataFrame()
        return ProtocolAnalysis(model, protocol, overall, None, None, empty, empty, empty, None)
    correct = frame[correct_mask(frame)]
    has_labels = "correct0" in frame.columns and frame["correct0"].notna().any()
    bin_map = assign_bins(scores, bins=bins)
    pose_spearman, pose_deciles = None, pd.DataFrame()
    if "pose_atypicality" in frame.columns and frame["pose_atypicality"].notna().any():
        pose_spearman = _spearman(frame, "pose_atypicality", seed=seed)
        pose_bins = assign_bins(scores, column="pose_atypicality", bins=bins)
        pose_deciles = decile_table(frame, pose_bins, column="pose_atypicality", seed=seed)
    return ProtocolAnalysis(
        model=model,
        protocol=protocol,
        overall=overall,
        spearman=_spearman(frame, "atypicality", seed=seed),
        spearman_correct=_spearman(correct, "atypicality", seed=seed) if has_labels else None,
        deciles=decile_table(frame, bin_map, seed=seed),
        deciles_correct=decile_table(correct, bin_map, seed=seed) if has_labels else pd.DataFrame(),
        halves=halves_table(frame, assign_halves(scores), seed=seed),
        logistic=logistic_control(frame),
        pose_spearman=pose_spearman,
        pose_deciles=pose_deciles,
    )


def _table(value: pd.DataFrame | str | os.PathLike[str], what: str) -> pd.DataFrame:
    """A table given as a DataFrame, or read from the path of its Parquet file."""
    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, (str, os.PathLike)):
        return read_table(Path(value))
    raise TypeError(f"analyse() takes the {what} table as a pandas DataFrame or the path of its Parquet file, "
                    f"got {type(value).__name__}")  # fmt: skip


def analyse(
    scores: pd.DataFrame | str | os.PathLike[str] | None,
    invariance: pd.DataFrame | str | os.PathLike[str],
    *,
    bins: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> list[ProtocolAnalysis]:
    """``analyse_protocol`` for every (model, protocol) of the invariance rows, in table order.

    ``scores`` (the output of ``biasprobe score``, or None) and ``invariance`` (of ``biasprobe
    invariance``) are DataFrames or paths of those Parquet files.
    """
    from tqdm import tqdm

    scores = None if scores is None else _table(scores, "scores")
    invariance = _table(invariance, "invariance")
    joined = join_scores(scores, invariance)
    pairs = list(joined[["model", "protocol"]].drop_duplicates().itertuples(index=False))
    return [
        analyse_protocol(joined, scores, model=str(m), protocol=str(p), bins=bins, seed=seed)
        for m, p in tqdm(pairs, desc="analysis", unit="protocol", disable=not progress or len(pairs) < 2)
    ]
