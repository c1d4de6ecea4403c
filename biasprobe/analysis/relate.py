"""Relate invariance to typicality (docs/protocols.md section 5), as DataFrames and frozen dataclasses.

Inputs are the tables of ``biasprobe score`` (one row per image) and ``biasprobe invariance``
(one row per image and protocol, possibly several models concatenated). One atypicality axis
is used for every model: the scores table's ``atypicality`` joined by ``image_id``.

- Spearman rho of atypicality vs ``p_change`` with a bootstrap CI and a permutation p-value.
- Deciles: equal-count bins of the scored images ranked by atypicality (``pandas.qcut`` on
  rank); per decile n, P(top-1 change), MAC, accuracy with CIs, and the error and instability
  ratios ``(1 - acc_bin) / (1 - acc_all)`` and ``P_bin / P_all``.
- Halves: split at the median atypicality of the scored images (typical: <= median).
- Accuracy control: the same within correctly classified images, and an unpenalised logistic
  regression (statsmodels ``Logit``) of "image has any flip" on standardised atypicality and
  standardised top-1 confidence at x_0 (``p_top0``).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from biasprobe.analysis.stats import Estimate, mean_estimate, ratio_estimate, spearman_estimate
from biasprobe.core.errors import InputError

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

log = logging.getLogger(__name__)

NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0)
SCORE_COLUMNS = ("atypicality", "pose_atypicality", "knn_dist", "in_train")


@dataclass(frozen=True)
class GroupStats:
    """Dataset-level figures of a group of (image, protocol) rows."""

    n: int
    p_change: Estimate
    mac: Estimate
    accuracy: Estimate
    flips: int
    pairs: int

    def to_row(self, prefix: str = "") -> dict[str, float | int]:
        """Flat columns: n, p_change, p_change_lo, p_change_hi, mac..., accuracy..."""
        row: dict[str, float | int] = {f"{prefix}n": self.n, f"{prefix}flips": self.flips, f"{prefix}pairs": self.pairs}
        for name in ("p_change", "mac", "accuracy"):
            est: Estimate = getattr(self, name)
            row[f"{prefix}{name}"] = est.value
            row[f"{prefix}{name}_lo"] = est.ci_low
            row[f"{prefix}{name}_hi"] = est.ci_high
        return row


@dataclass(frozen=True)
class LogisticResult:
    """The atypicality coefficient of the logistic accuracy control, or why there is none."""

    n: int
    coef: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_value: float = float("nan")
    confidence_coef: float = float("nan")
    covariates: tuple[str, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.coef)


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


def _float(values: pd.Series) -> np.ndarray:
    """Any numeric / nullable column as float64 with NaN for missing."""
    return pd.to_numeric(values, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def correct_mask(frame: pd.DataFrame) -> np.ndarray:
    """Boolean array: ``correct0`` is known and true (False where unknown)."""
    if "correct0" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame["correct0"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def group_stats(frame: pd.DataFrame, *, seed: int = 0) -> GroupStats:
    """P(top-1 change) = sum(flips) / sum(pairs), MAC = mean of all per-pair changes, accuracy."""
    flips = _float(frame["flips"]) if len(frame) else np.zeros(0)
    pairs = _float(frame["pairs"]) if len(frame) else np.zeros(0)
    mac = _float(frame["mac_top1"]) if len(frame) else np.zeros(0)
    p_change = ratio_estimate(flips, pairs, seed=seed)
    mac_est = ratio_estimate(mac * pairs, pairs, seed=seed)
    if "correct0" in frame.columns and len(frame):
        acc_est = mean_estimate(_float(frame["correct0"].astype("boolean").astype("Float64")), seed=seed)
    else:
        acc_est = NAN_ESTIMATE
    return GroupStats(
        n=len(frame), p_change=p_change, mac=mac_est, accuracy=acc_est,
        flips=int(np.nansum(flips)), pairs=int(np.nansum(pairs)),
    )


def join_scores(scores: pd.DataFrame | None, invariance: pd.DataFrame) -> pd.DataFrame:
    """Invariance rows with the scores table's atypicality columns joined by ``image_id``."""
    missing = {"image_id", "protocol", "flips", "pairs", "mac_top1", "p_change"} - set(invariance.columns)
    if missing:
        raise InputError(
            f"invariance table lacks columns {sorted(missing)}; expected the output of 'biasprobe invariance'"
        )
    out = invariance.copy()
    if "model" not in out.columns:
        out["model"] = "model"
    out["image_id"] = out["image_id"].astype(str)
    if scores is None:
        return out
    if "image_id" not in scores.columns or "atypicality" not in scores.columns:
        raise InputError("scores table lacks image_id/atypicality; expected the output of 'biasprobe score'")
    keep = ["image_id", *[c for c in SCORE_COLUMNS if c in scores.columns]]
    right = scores[keep].drop_duplicates("image_id").copy()
    right["image_id"] = right["image_id"].astype(str)
    out = out.drop(columns=[c for c in keep[1:] if c in out.columns])
    return out.merge(right, on="image_id", how="left")


def assign_bins(scores: pd.DataFrame, *, column: str = "atypicality", bins: int = 10) -> pd.Series:
    """Equal-count bins (1 = most typical) of the scored images ranked by ``column``, by image_id.

    ``pandas.qcut`` on the rank (ties broken by order), so every bin holds n/bins images;
    fewer bins when there are fewer images than ``bins``; empty when fewer than 2 images.
    """
    if column not in scores.columns:
        return pd.Series(dtype="int64", name="bin")
    scored = scores[["image_id", column]].dropna().drop_duplicates("image_id")
    k = min(bins, len(scored))
    if k < 2:
        return pd.Series(dtype="int64", name="bin")
    ranks = scored[column].rank(method="first")
    labels = pd.qcut(ranks, k, labels=False).astype("int64") + 1
    return pd.Series(labels.to_numpy(), index=scored["image_id"].astype(str).to_numpy(), name="bin")


def assign_halves(scores: pd.DataFrame, *, column: str = "atypicality") -> pd.Series:
    """'typical' (<= median of the scored images) or 'atypical' (> median), by image_id."""
    if column not in scores.columns:
        return pd.Series(dtype="object", name="half")
    scored = scores[["image_id", column]].dropna().drop_duplicates("image_id")
    if scored.empty:
        return pd.Series(dtype="object", name="half")
    median = float(scored[column].median())
    halves = np.where(scored[column].to_numpy(dtype=float) <= median, "typical", "atypical")
    return pd.Series(halves, index=scored["image_id"].astype(str).to_numpy(), name="half")


def decile_table(
    joined: pd.DataFrame, bins: pd.Series, *, column: str = "atypicality", seed: int = 0
) -> pd.DataFrame:
    """Per bin: n, range of ``column``, P(change), MAC, accuracy (with CIs) and the two ratios."""
    if bins.empty or joined.empty:
        return pd.DataFrame()
    frame = joined.assign(bin=joined["image_id"].map(bins)).dropna(subset=["bin"])
    if frame.empty:
        return pd.DataFrame()
    overall = group_stats(frame, seed=seed)
    rows = []
    for b, group in frame.groupby("bin", sort=True):
        stats = group_stats(group, seed=seed)
        row = {"bin": int(b), f"{column}_min": float(group[column].min()), f"{column}_max": float(group[column].max())}
        row.update(stats.to_row())
        p_all, acc_all = overall.p_change.value, overall.accuracy.value
        row["instability_ratio"] = stats.p_change.value / p_all if p_all > 0 else float("nan")
        row["error_ratio"] = (1 - stats.accuracy.value) / (1 - acc_all) if acc_all < 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def halves_table(joined: pd.DataFrame, halves: pd.Series, *, seed: int = 0) -> pd.DataFrame:
    """Per half (typical, atypical): n, P(change), MAC, accuracy with CIs, share of all flips."""
    if halves.empty or joined.empty:
        return pd.DataFrame()
    frame = joined.assign(half=joined["image_id"].map(halves)).dropna(subset=["half"])
    total_flips = float(_float(frame["flips"]).sum())
    rows = []
    for half in ("typical", "atypical"):
        group = frame[frame["half"] == half]
        stats = group_stats(group, seed=seed)
        row: dict[str, object] = {"half": half, **stats.to_row()}
        row["share_of_flips"] = stats.flips / total_flips if total_flips > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def _standardise(values: np.ndarray) -> np.ndarray | None:
    sd = float(np.std(values))
    if not math.isfinite(sd) or sd == 0:
        return None
    return (values - values.mean()) / sd


def logistic_control(joined: pd.DataFrame, *, column: str = "atypicality") -> LogisticResult:
    """Unpenalised Logit of "any flip" on standardised atypicality and standardised ``p_top0``."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if column not in joined.columns:
        return LogisticResult(n=0, note=f"no {column} column")
    y = (_float(joined["flips"]) > 0).astype(float)
    x = _float(joined[column])
    conf = _float(joined["p_top0"]) if "p_top0" in joined.columns else np.full(len(joined), np.nan)
    use_conf = bool(np.isfinite(conf).any())
    keep = np.isfinite(x) & (np.isfinite(conf) if use_conf else True)
    y, x, conf = y[keep], x[keep], conf[keep]
    n = int(y.size)
    if n < 10:
        return LogisticResult(n=n, note=f"too few images ({n}) for a logistic regression")
    if y.min() == y.max():
        return LogisticResult(n=n, note="every image has the same outcome (all flip or none flips)")
    xs = _standardise(x)
    if xs is None:
        return LogisticResult(n=n, note=f"{column} does not vary")
    columns, names = [np.ones(n), xs], ["const", column]
    cs = _standardise(conf) if use_conf else None
    if cs is not None:
        columns.append(cs)
        names.append("p_top0")
    design = np.column_stack(columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = sm.Logit(y, design).fit(disp=0, method="newton", maxiter=100)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return LogisticResult(n=n, covariates=tuple(names[1:]), note=f"the fit failed: {exc}")
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        return LogisticResult(n=n, covariates=tuple(names[1:]), note="perfect separation: the coefficient is not estimable")
    converged = bool(result.mle_retvals.get("converged", True)) and not any(
        issubclass(w.category, ConvergenceWarning) for w in caught
    )
    params = np.asarray(result.params)
    ci = np.asarray(result.conf_int(0.05))
    if not converged or not np.all(np.isfinite(ci)):
        return LogisticResult(n=n, covariates=tuple(names[1:]), note="the fit did not converge")
    return LogisticResult(
        n=n,
        coef=float(params[1]),
        ci_low=float(ci[1, 0]),
        ci_high=float(ci[1, 1]),
        p_value=float(np.asarray(result.pvalues)[1]),
        confidence_coef=float(params[2]) if len(params) > 2 else float("nan"),
        covariates=tuple(names[1:]),
        note="" if cs is not None else "no varying p_top0: atypicality alone",
    )


def _spearman(frame: pd.DataFrame, column: str, *, seed: int) -> Estimate | None:
    if column not in frame.columns:
        return None
    return spearman_estimate(_float(frame[column]), _float(frame["p_change"]), seed=seed)


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


def analyse(
    scores: pd.DataFrame | None,
    invariance: pd.DataFrame,
    *,
    bins: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> list[ProtocolAnalysis]:
    """``analyse_protocol`` for every (model, protocol) of the invariance rows, in table order."""
    from tqdm import tqdm

    joined = join_scores(scores, invariance)
    pairs = list(joined[["model", "protocol"]].drop_duplicates().itertuples(index=False))
    return [
        analyse_protocol(joined, scores, model=str(m), protocol=str(p), bins=bins, seed=seed)
        for m, p in tqdm(pairs, desc="analysis", unit="protocol", disable=not progress or len(pairs) < 2)
    ]


def protocol_table(invariance: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per (model, protocol): n, P(change), MAC, accuracy with CIs, consistency."""
    joined = join_scores(None, invariance)
    rows = []
    for (model, protocol), group in joined.groupby(["model", "protocol"], sort=False):
        stats = group_stats(group, seed=seed)
        row: dict[str, object] = {"model": model, "protocol": protocol, **stats.to_row()}
        row["consistency"] = 1 - stats.p_change.value
        rows.append(row)
    return pd.DataFrame(rows)


def compare_models(scores: pd.DataFrame, invariance: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Fixes: per (model, protocol), P(change) on the typical and atypical halves of one axis."""
    joined = join_scores(scores, invariance)
    halves = assign_halves(scores)
    rows = []
    for (model, protocol), group in joined.groupby(["model", "protocol"], sort=False):
        table = halves_table(group, halves, seed=seed)
        row: dict[str, object] = {"model": model, "protocol": protocol}
        row.update(group_stats(group, seed=seed).to_row("all_"))
        for rec in table.to_dict("records"):
            half = rec["half"]
            for key in ("n", "p_change", "p_change_lo", "p_change_hi", "share_of_flips"):
                row[f"{half}_{key}"] = rec[key]
        rows.append(row)
    return pd.DataFrame(rows)


def protocol_figures(scores_df: pd.DataFrame | None, invariance_df: pd.DataFrame, protocol: str) -> dict:
    """Headline figures of one protocol (the first model in the table) for the demo summary."""
    joined = join_scores(scores_df, invariance_df)
    frame = joined[joined["protocol"] == protocol]
    if frame.empty:
        raise InputError(f"no rows for protocol {protocol!r}; the table has {sorted(joined['protocol'].unique())}")
    frame = frame[frame["model"] == frame["model"].iloc[0]]
    stats = group_stats(frame)
    out: dict[str, object] = {
        "n": stats.n,
        "p_change": stats.p_change.value,
        "p_change_ci": [stats.p_change.ci_low, stats.p_change.ci_high],
        "mac": stats.mac.value,
        "accuracy": stats.accuracy.value,
        "spearman_rho": None,
        "spearman_ci": None,
        "typical_half": None,
        "atypical_half": None,
    }
    if scores_df is not None:
        rho = spearman_estimate(_float(frame["atypicality"]), _float(frame["p_change"]))
        out["spearman_rho"] = rho.value
        out["spearman_ci"] = [rho.ci_low, rho.ci_high]
        halves = halves_table(frame, assign_halves(scores_df))
        for rec in halves.to_dict("records"):
            out[f"{rec['half']}_half"] = {"p_change": rec["p_change"], "n": int(rec["n"])}
    return out


def _strength(rho: float) -> str:
    a = abs(rho)
    return "negligible" if a < 0.1 else "weak" if a < 0.3 else "moderate" if a < 0.5 else "strong"


def _p_text(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p not computed"
    return "permutation p < 0.001" if p < 0.001 else f"permutation p = {p:.3f}"


def _tenths_text(deciles: pd.DataFrame) -> str:
    """'the most atypical tenth changes its top-1 answer 5.0x as often as the most typical tenth'."""
    if deciles.empty or len(deciles) < 2:
        return ""
    lo, hi = float(deciles["p_change"].iloc[0]), float(deciles["p_change"].iloc[-1])
    k = len(deciles)
    part = "tenth" if k == 10 else f"1/{k}"
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return ""
    if lo > 0:
        return (
            f"the most atypical {part} changes its top-1 answer {hi / lo:.1f}x as often as the most typical "
            f"{part} ({100 * hi:.1f}% vs {100 * lo:.1f}% of shifts)"
        )
    return f"the most atypical {part} changes its top-1 answer on {100 * hi:.1f}% of shifts, the most typical {part} on none"


def verdict(result: ProtocolAnalysis) -> str:
    """A plain-language verdict: is instability concentrated on atypical images, how strongly,
    how sure, and does it hold after the accuracy and confidence control."""
    rho = result.spearman
    head = f"{result.model}, protocol {result.protocol}: "
    if rho is None:
        return head + "no typicality scores were given, so instability cannot be related to atypicality."
    if not math.isfinite(rho.value):
        return head + (
            f"the rank correlation cannot be computed (n = {rho.n}, or atypicality or P(top-1 change) "
            "does not vary), so there is no evidence either way."
        )
    ci = f"Spearman rho {rho.value:.2f}, 95% CI {rho.ci_low:.2f} to {rho.ci_high:.2f}, {_p_text(rho.p_value)}, n = {rho.n}"
    tenths = _tenths_text(result.deciles)
    if rho.ci_low > 0:
        first = f"Instability is concentrated on atypical images ({_strength(rho.value)} effect)"
        first += f": {tenths} ({ci})." if tenths else f" ({ci})."
    elif rho.ci_high < 0:
        first = f"Instability is concentrated on TYPICAL images, the opposite of the photographer's-bias pattern ({ci})."
    else:
        first = f"No evidence that instability is concentrated on atypical images: the CI includes 0 ({ci})."
    parts = [head + first]
    lg = result.logistic
    if lg is not None and lg.ok:
        coef = f"logistic coefficient of atypicality {lg.coef:.2f} per SD, 95% CI {lg.ci_low:.2f} to {lg.ci_high:.2f}"
        if lg.ci_low > 0:
            parts.append(f"The effect holds after controlling for confidence ({coef}).")
        elif lg.ci_high < 0:
            parts.append(f"After controlling for confidence, atypical images flip LESS often ({coef}).")
        else:
            parts.append(f"After controlling for confidence there is no evidence of an effect ({coef}: includes 0).")
    elif lg is not None:
        parts.append(f"The logistic confidence control could not be fitted: {lg.note}.")
    rc = result.spearman_correct
    if rc is not None and math.isfinite(rc.value):
        within = f"rho {rc.value:.2f}, CI {rc.ci_low:.2f} to {rc.ci_high:.2f}, n = {rc.n}"
        if rc.ci_low > 0:
            parts.append(f"Within correctly classified images it remains ({within}).")
        else:
            parts.append(f"Within correctly classified images there is no clear evidence ({within}).")
    return " ".join(parts)
