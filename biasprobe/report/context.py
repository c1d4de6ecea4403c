"""Turn report inputs into the plain values the template shows (numbers, rows, figure URIs).

Every string from the data stays a plain ``str``: the template escapes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from biasprobe import __version__
from biasprobe.analysis import relate as an
from biasprobe.analysis.stats import N_BOOTSTRAP, N_PERMUTATIONS, Estimate
from biasprobe.report import figures
from biasprobe.report.inputs import ReportInputs
from biasprobe.report.thumbnails import Thumbnail, thumbnail

__all__ = ["GALLERY_SIZE", "build_context", "build_supplement", "fmt", "fmt_ci", "primary_protocol"]

log = logging.getLogger(__name__)

GALLERY_SIZE = 6
PREFERRED_PROTOCOLS = ("crop", "black", "inpaint", "scale", "circular", "zhang")


def fmt(value: object, digits: int = 3) -> str:
    """A number for a table: fixed digits, 'n/a' for missing."""
    if value is None:
        return "n/a"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "n/a"
    if v.is_integer() and abs(v) >= 1 and digits == 0:
        return f"{int(v)}"
    return f"{v:.{digits}f}"


def fmt_ci(lo: object, hi: object, digits: int = 3) -> str:
    """'[lo, hi]' or '' when the CI is unknown."""
    a, b = fmt(lo, digits), fmt(hi, digits)
    return "" if a == "n/a" or b == "n/a" else f"[{a}, {b}]"


def _est(e: Estimate | None, digits: int = 3) -> dict[str, str]:
    if e is None:
        return {"value": "n/a", "ci": "", "p": ""}
    p = "" if e.p_value is None else ("< 0.001" if e.p_value < 0.001 else fmt(e.p_value))
    return {"value": fmt(e.value, digits), "ci": fmt_ci(e.ci_low, e.ci_high, digits), "p": p, "n": str(e.n)}


def primary_protocol(protocols: list[str]) -> str:
    """The protocol the headline uses: crop (the paper's main one) when present, else the first."""
    for name in PREFERRED_PROTOCOLS:
        if name in protocols:
            return name
    return protocols[0]


def _decile_rows(table: pd.DataFrame, column: str) -> list[dict[str, str]]:
    rows = []
    for rec in table.to_dict("records"):
        rows.append({
            "bin": str(rec["bin"]),
            "range": f"{fmt(rec[f'{column}_min'], 2)}-{fmt(rec[f'{column}_max'], 2)}",
            "n": str(rec["n"]),
            "p_change": fmt(rec["p_change"]), "p_change_ci": fmt_ci(rec["p_change_lo"], rec["p_change_hi"]),
            "mac": fmt(rec["mac"]), "mac_ci": fmt_ci(rec["mac_lo"], rec["mac_hi"]),
            "accuracy": fmt(rec["accuracy"], 2), "accuracy_ci": fmt_ci(rec["accuracy_lo"], rec["accuracy_hi"], 2),
            "instability_ratio": fmt(rec["instability_ratio"], 2), "error_ratio": fmt(rec["error_ratio"], 2),
        })
    return rows


def _logistic(lg: an.LogisticResult | None) -> dict[str, str] | None:
    if lg is None:
        return None
    if not lg.ok:
        return {"text": f"Not fitted: {lg.note}."}
    text = (
        f"Logit(any flip) on standardised {' and '.join(lg.covariates)}: atypicality coefficient "
        f"{lg.coef:.2f} per SD, 95% CI [{lg.ci_low:.2f}, {lg.ci_high:.2f}], p {'< 0.001' if lg.p_value < 0.001 else '= ' + fmt(lg.p_value)}"
    )
    if math.isfinite(lg.confidence_coef):
        text += f"; confidence coefficient {lg.confidence_coef:.2f}"
    return {"text": text + (f" ({lg.note})" if lg.note else "") + f"; n = {lg.n}."}


def _analysis_block(res: an.ProtocolAnalysis, scores: pd.DataFrame | None, joined: pd.DataFrame) -> dict:
    block: dict[str, object] = {
        "model": res.model, "protocol": res.protocol, "verdict": an.verdict(res),
        "spearman": _est(res.spearman, 2), "spearman_correct": _est(res.spearman_correct, 2),
        "logistic": _logistic(res.logistic), "deciles": _decile_rows(res.deciles, "atypicality"),
        "deciles_correct": _decile_rows(res.deciles_correct, "atypicality"),
        "pose_spearman": _est(res.pose_spearman, 2) if res.pose_spearman else None,
        "pose_deciles": _decile_rows(res.pose_deciles, "pose_atypicality"),
        "decile_figure": "", "scatter_figure": "", "pose_figure": "", "why": "",
        "has_correct_line": not res.deciles_correct.empty,
    }
    if res.deciles.empty:
        block["why"] = "No decile plot: fewer than 2 scored images share image ids with this invariance table."
        return block
    lines = [("all images", res.deciles)]
    if not res.deciles_correct.empty:
        lines.append(("correctly classified at x0", res.deciles_correct))
    block["decile_figure"] = figures.decile_plot(lines)
    frame = joined[(joined["model"] == res.model) & (joined["protocol"] == res.protocol)].dropna(subset=["atypicality"])
    block["scatter_figure"] = figures.scatter_plot(frame["atypicality"].to_numpy(float), frame["p_change"].to_numpy(float))
    if not res.pose_deciles.empty:
        block["pose_figure"] = figures.decile_plot([("all images", res.pose_deciles)], column="pose_atypicality")
    return block


def _protocol_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "model": str(r["model"]), "protocol": str(r["protocol"]), "n": str(r["n"]),
            "p_change": fmt(r["p_change"]), "p_change_ci": fmt_ci(r["p_change_lo"], r["p_change_hi"]),
            "mac": fmt(r["mac"]), "mac_ci": fmt_ci(r["mac_lo"], r["mac_hi"]),
            "consistency": fmt(r["consistency"]),
            "accuracy": fmt(r["accuracy"], 2), "accuracy_ci": fmt_ci(r["accuracy_lo"], r["accuracy_hi"], 2),
        }
        for r in table.to_dict("records")
    ]


def _cached_thumbnails(inputs: ReportInputs) -> Callable[[str, bool], Thumbnail]:
    cache: dict[tuple[str, bool], Thumbnail] = {}
    image_roots, neighbour_roots = inputs.image_roots(), inputs.neighbour_roots()

    def get(path: str, neighbour: bool = False) -> Thumbnail:
        key = (path, neighbour)
        if key not in cache:
            cache[key] = thumbnail(path, roots=neighbour_roots if neighbour else image_roots, size=96 if neighbour else 128)
        return cache[key]

    return get


def _gallery_card(row: dict, scores_by_id: dict, views: pd.DataFrame, thumb: Callable) -> dict:
    score = scores_by_id.get(row["image_id"], {})
    t = thumb(str(row.get("path", "")))
    neighbours = []
    paths = score.get("neighbor_paths")
    dists = score.get("neighbor_dists")
    if paths is not None:
        dists = list(dists) if dists is not None else [float("nan")] * len(paths)
        for p, d in list(zip(paths, dists, strict=False))[:3]:
            nt = thumb(str(p), True)
            neighbours.append({"path": str(p), "dist": fmt(d), "uri": nt.uri, "error": nt.error})
    curve = ""
    if not views.empty and row["protocol"] != "zhang":  # zhang views are random pairs, not a sequence
        v = views[(views["image_id"] == row["image_id"]) & (views["protocol"] == row["protocol"])]
        if len(v) >= 2 and "p_k0" in v.columns and "top1" in v.columns:
            curve = figures.shift_curve(v)
    return {
        "path": str(row.get("path", "")), "image_id": str(row["image_id"]), "uri": t.uri, "error": t.error,
        "label": "" if pd.isna(row.get("label_name")) else str(row.get("label_name", "")),
        "top0": "" if pd.isna(row.get("top0_name")) else str(row.get("top0_name", "")),
        "flips": f"{int(row['flips'])}/{int(row['pairs'])}", "p_change": fmt(row["p_change"]),
        "prob_range": fmt(row.get("prob_range")), "atypicality": fmt(score.get("atypicality"), 2),
        "knn_dist": fmt(score.get("knn_dist")), "neighbours": neighbours, "curve": curve,
        "no_neighbours": "" if paths is not None else (
            "this image is not in the scores table" if scores_by_id
            else "no training index for this image set: no neighbours"),
    }


def _galleries(inputs: ReportInputs, model: str, protocol: str) -> dict:
    inv = next(i for i in inputs.invariance if i.model == model)
    frame = inv.table[inv.table["protocol"] == protocol].copy()
    for col in ("prob_range", "mac_top1"):
        if col not in frame.columns:
            frame[col] = 0.0
    scores_by_id: dict = {}
    if inputs.scores is not None:
        scores_by_id = {str(r["image_id"]): r for r in inputs.scores.drop_duplicates("image_id").to_dict("records")}
    thumb = _cached_thumbnails(inputs)
    ranked = frame.sort_values(["p_change", "prob_range", "mac_top1"], ascending=False, kind="stable")
    size = min(GALLERY_SIZE, len(ranked) // 2) if len(ranked) > 1 else len(ranked)
    least = ranked.head(size)  # few images: the two galleries split them, never show one twice
    most = ranked.iloc[len(least):].tail(size).iloc[::-1]
    views = inv.views if not inv.views.empty else pd.DataFrame()
    return {
        "model": model, "protocol": protocol,
        "least": [_gallery_card(r, scores_by_id, views, thumb) for r in least.to_dict("records")],
        "most": [_gallery_card(r, scores_by_id, views, thumb) for r in most.to_dict("records")],
        "no_views": "" if not views.empty else "no views table beside the invariance file: curves cannot be drawn",
    }


def _fixes(inputs: ReportInputs, seed: int) -> dict:
    if len(inputs.invariance) < 2:
        return {"why": "One invariance file (one model) was given; pass one per model (baseline, antialiased, "
                       "augmented) to compare fixes."}
    if inputs.scores is None:
        return {"why": "No scores table: typical and atypical halves need atypicality."}
    table = an.compare_models(inputs.scores, inputs.combined, seed=seed)
    rows = [
        {
            "model": str(r["model"]), "protocol": str(r["protocol"]), "all": fmt(r["all_p_change"]),
            "all_ci": fmt_ci(r["all_p_change_lo"], r["all_p_change_hi"]),
            "typical": fmt(r.get("typical_p_change")), "typical_ci": fmt_ci(r.get("typical_p_change_lo"), r.get("typical_p_change_hi")),
            "atypical": fmt(r.get("atypical_p_change")), "atypical_ci": fmt_ci(r.get("atypical_p_change_lo"), r.get("atypical_p_change_hi")),
            "share": fmt(r.get("atypical_share_of_flips"), 2), "accuracy": fmt(r["all_accuracy"], 2),
        }
        for r in table.to_dict("records")
    ]
    ok = "typical_p_change" in table.columns
    return {"why": "" if ok else "No image of the invariance tables has an atypicality score.",
            "rows": rows, "figure": figures.fixes_plot(table) if ok else ""}


def _boxes(inputs: ReportInputs) -> dict:
    train, test = inputs.boxes_train, inputs.boxes_test
    if train is None and test is None:
        return {"why": "No object boxes are known (give --boxes-train and --boxes-test, or score and index with --boxes)."}
    return {
        "why": "",
        "heatmap": figures.box_centre_heatmap(None if train is None else train[:, :2], None if test is None else test[:, :2]),
        "sizes": figures.box_size_histogram(None if train is None else train[:, 2], None if test is None else test[:, 2]),
        "n_train": 0 if train is None else len(train), "n_test": 0 if test is None else len(test),
    }


def _duplicates(scores: pd.DataFrame | None) -> dict:
    if scores is None or "in_train" not in scores.columns:
        return {"why": "No in_train column in the scores table.", "rows": [], "n": 0}
    dup = scores[scores["in_train"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    rows = [{"path": str(r.get("path", "")), "image_id": str(r["image_id"])} for r in dup.head(50).to_dict("records")]
    return {"why": "", "rows": rows, "n": len(dup), "total": len(scores)}


def _skipped(inputs: ReportInputs) -> list[dict[str, str]]:
    rows = []
    sources = [("score", inputs.scores_skipped)] + [(f"invariance {i.model}", i.skipped) for i in inputs.invariance]
    for source, table in sources:
        if table.empty:
            continue
        for r in table.to_dict("records"):
            rows.append({"stage": source, "path": str(r.get("path", "")), "reason": str(r.get("reason", ""))})
    return rows


def _headline(inputs: ReportInputs, primary: an.ProtocolAnalysis) -> list[tuple[str, str]]:
    o = primary.overall
    items = [
        ("images measured", f"{o.n}"),
        (f"P(top-1 change), {primary.protocol}", f"{fmt(o.p_change.value)} {fmt_ci(o.p_change.ci_low, o.p_change.ci_high)}"),
        (f"MAC, {primary.protocol}", f"{fmt(o.mac.value)} {fmt_ci(o.mac.ci_low, o.mac.ci_high)}"),
        ("accuracy at x0", fmt(o.accuracy.value, 2)),
    ]
    if primary.spearman is not None:
        s = _est(primary.spearman, 2)
        items.append(("Spearman rho (atypicality, P(change))", f"{s['value']} {s['ci']}"))
    if not primary.halves.empty:
        h = primary.halves.set_index("half")
        items.append(("P(change) typical / atypical half",
                      f"{fmt(h.loc['typical', 'p_change'])} / {fmt(h.loc['atypical', 'p_change'])}"))
    return items


def build_context(inputs: ReportInputs, *, title: str | None, seed: int, command: list[str] | None) -> dict:
    """All values of the template, computed from the inputs."""
    combined = inputs.combined
    joined = an.join_scores(inputs.scores, combined)
    results = an.analyse(inputs.scores, combined, seed=seed, progress=True)
    protocols = list(dict.fromkeys(combined["protocol"].astype(str)))
    main_model = inputs.invariance[0].model
    main_protocol = primary_protocol(protocols)
    primary = next(r for r in results if r.model == main_model and r.protocol == main_protocol) if any(
        r.model == main_model and r.protocol == main_protocol for r in results) else results[0]
    ordered = [primary] + [r for r in results if r is not primary]
    return {
        "title": title or "biasprobe bias report",
        "version": __version__,
        "headline": _headline(inputs, primary),
        "verdicts": [an.verdict(r) for r in ordered],
        "protocol_rows": _protocol_rows(an.protocol_table(combined, seed=seed)),
        "analyses": [_analysis_block(r, inputs.scores, joined) for r in ordered] if inputs.scores is not None else [],
        "no_scores": "" if inputs.scores is not None else "No scores table was given: atypicality is unknown.",
        "boxes": _boxes(inputs),
        "gallery": _galleries(inputs, primary.model, primary.protocol),
        "fixes": _fixes(inputs, seed),
        "duplicates": _duplicates(inputs.scores),
        "skipped": _skipped(inputs),
        "provenance": _provenance(inputs, seed=seed, command=command),
        "supplements": [],
    }


def build_supplement(inputs: ReportInputs, *, title: str, seed: int) -> dict:
    """A further image set shown without an atypicality axis: protocol table and gallery."""
    combined = inputs.combined
    protocols = list(dict.fromkeys(combined["protocol"].astype(str)))
    model = inputs.invariance[0].model
    return {
        "title": title,
        "protocol_rows": _protocol_rows(an.protocol_table(combined, seed=seed)),
        "gallery": _galleries(inputs, model, primary_protocol(protocols)),
        "skipped": _skipped(inputs),
        "provenance": _provenance(inputs, seed=seed, command=None)[:-1],
    }


def _provenance(inputs: ReportInputs, *, seed: int, command: list[str] | None) -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for inv in inputs.invariance:
        s = inv.summary
        items.append((f"invariance file {inv.model}", {
            "file": str(inv.path), "model": s.get("model", {}), "parameters": s.get("parameters", {}),
            "images": s.get("images"), "versions": s.get("versions", {}), "command": s.get("command"),
        }))
    if inputs.scores_path is not None:
        items.append(("scores file", {"file": str(inputs.scores_path), **inputs.scores_summary}))
    if inputs.index_meta:
        items.append(("index meta.json", {"folder": str(inputs.index_path), **inputs.index_meta}))
    items.append(("analysis", {
        "bootstrap_resamples": N_BOOTSTRAP, "permutations": N_PERMUTATIONS, "seed": seed, "bins": 10,
        "ci": "percentile 95%", "biasprobe": __version__, "numpy": np.__version__, "pandas": pd.__version__,
        "report command": command,
    }))
    return items
