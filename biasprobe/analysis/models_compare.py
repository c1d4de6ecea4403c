"""Several models on the same images (docs/protocols.md section 5.8): per model and protocol the
images, accuracy, P(top-1 change) and, for paired protocols, consistency, each with its 95% CI,
and a plain answer to "are the more accurate models the more consistent ones here?".

The figures are ``groups.group_stats`` of each model's invariance rows, restricted to the images
every model has for that protocol, so the models are compared on one image set; consistency is
``1 - P(top-1 change)`` with the CI mirrored, as the invariance stage's summary gives it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pandas as pd

from biasprobe.analysis.groups import group_stats
from biasprobe.analysis.join import join_scores
from biasprobe.analysis.order import protocol_order
from biasprobe.analysis.shift_distance import PAIRED_PROTOCOLS
from biasprobe.core.errors import InputError

__all__ = ["accuracy_consistency_answer", "compare_model_tables"]

FIGURES = ("accuracy", "p_change", "consistency")


def compare_model_tables(tables: Sequence[tuple[str, pd.DataFrame]], *, seed: int = 0) -> pd.DataFrame:
    """One row per (model, protocol), the models in the order given, the protocols every model
    measured in section 2.2's order: ``n`` (the images every model has for that protocol),
    ``dropped`` (this model's other images), ``flips``, ``pairs``, and ``accuracy``,
    ``p_change``, ``mac``, ``consistency`` each with ``_lo``/``_hi`` (consistency only for the
    paired protocols, NaN otherwise; accuracy NaN without labels).

    ``tables``: (label, invariance rows) per model, the labels distinct.
    """
    labels = [label for label, _ in tables]
    if len(labels) < 2:
        raise InputError(f"comparing models needs the invariance tables of at least two models, got {len(labels)}")
    if len(set(labels)) != len(labels):
        raise InputError(f"each model's table needs its own name; got {labels}")
    frames = {label: join_scores(None, frame) for label, frame in tables}
    measured = [set(frame["protocol"].astype(str)) for frame in frames.values()]
    shared = protocol_order(sorted(set.intersection(*measured)))
    if not shared:
        raise InputError(f"the models share no protocol: {dict(zip(labels, map(sorted, measured), strict=True))}")
    rows = []
    for protocol in shared:
        parts = {label: frame[frame["protocol"].astype(str) == protocol] for label, frame in frames.items()}
        common = set.intersection(*(set(part["image_id"]) for part in parts.values()))
        if not common:
            raise InputError(f"under {protocol} the models share no image: compare tables of the same images")
        for label, part in parts.items():
            kept = part[part["image_id"].isin(common)]
            stats = group_stats(kept, seed=seed)
            row: dict[str, object] = {"model": label, "protocol": protocol, **stats.to_row()}
            row["dropped"] = int(part["image_id"].nunique() - kept["image_id"].nunique())
            paired = protocol in PAIRED_PROTOCOLS
            change = stats.p_change
            row["consistency"] = 1.0 - change.value if paired else math.nan
            row["consistency_lo"] = 1.0 - change.ci_high if paired else math.nan
            row["consistency_hi"] = 1.0 - change.ci_low if paired else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return not (a["p_change_hi"] < b["p_change_lo"] or b["p_change_hi"] < a["p_change_lo"])


def accuracy_consistency_answer(table: pd.DataFrame, protocol: str) -> str:
    """One paragraph, from the numbers of ``compare_model_tables``: under ``protocol``, do the
    more accurate models change their top-1 less? Every pair of models with different accuracy
    counts: the more accurate one is more consistent (lower P(top-1 change)), less, or equal;
    and whether the two P(top-1 change) CIs are apart, which decides if the images can tell."""
    rows = table[table["protocol"] == protocol]
    if rows.empty:
        raise InputError(f"no models were compared under {protocol!r}")
    n = int(rows["n"].iloc[0])
    measure = "consistency" if protocol in PAIRED_PROTOCOLS else "P(top-1 change)"
    lead = f"Under {protocol} ({len(rows)} models, {n} images each): are more accurate models more consistent here?"
    known = rows[rows["accuracy"].notna()]
    if len(known) < 2:
        return (f"{lead} Unknown: accuracy needs labels, and only {len(known)} of the models' tables have them. "
                "P(top-1 change) alone ranks them: " + _ranking(rows, "p_change", ascending=True) + ".")
    concordant = discordant = tied = apart = 0
    for (_, a), (_, b) in itertools.combinations(known.iterrows(), 2):
        if a["accuracy"] == b["accuracy"]:
            continue
        better, worse = (a, b) if a["accuracy"] > b["accuracy"] else (b, a)
        if better["p_change"] < worse["p_change"]:
            concordant += 1
        elif better["p_change"] > worse["p_change"]:
            discordant += 1
        else:
            tied += 1
        apart += not _overlap(better, worse)
    compared = concordant + discordant + tied
    order = f"(accuracy: {_ranking(known, 'accuracy', ascending=False)}; P(top-1 change): " \
            f"{_ranking(known, 'p_change', ascending=True)})"
    if compared == 0:
        return f"{lead} The models are equally accurate on these images, so the question has no answer here {order}."
    if concordant == compared:
        answer = "Yes" + (": the more accurate model changes its top-1 less" if compared == 1 else
                          f": in {_all(compared)} pairs of models of different accuracy the more accurate one changes its top-1 less")
    elif discordant == compared:
        answer = "No, the reverse" + (": the more accurate model changes its top-1 more" if compared == 1 else
                                      f": in {_all(compared)} pairs the more accurate model changes its top-1 more")
    else:
        answer = (f"Not consistently: of {compared} pairs of models of different accuracy, the more accurate one changes "
                  f"its top-1 less in {concordant}, more in {discordant}" + (f" and as often in {tied}" if tied else ""))
    if apart == 0:
        caveat = (f"but every such pair's 95% CIs of P(top-1 change) overlap, so {n} images cannot tell the models' "
                  f"{measure} apart")
    else:
        caveat = f"{apart} of the {compared} pairs have 95% CIs of P(top-1 change) that do not overlap"
    return f"{lead} {answer} {order}; {caveat}."


def _all(count: int) -> str:
    return "both" if count == 2 else f"all {count}"


def _ranking(rows: pd.DataFrame, column: str, *, ascending: bool) -> str:
    ordered = rows.sort_values(column, ascending=ascending, kind="stable")
    return ", ".join(f"{r['model']} {_num(r[column])}" for _, r in ordered.iterrows())


def _num(value: object) -> str:
    v = float(value)  # type: ignore[arg-type]
    return "n/a" if not math.isfinite(v) else f"{v:.3f}"
