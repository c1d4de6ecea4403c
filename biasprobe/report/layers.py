"""The 'where invariance is lost' section: the layer profile by depth (``biasprobe layers``
files, docs/protocols.md section 7) and the shift-distance curves of the invariance views
(section 7.5), with what they show in plain words.

- instability (``change_1 / spread``) by depth, one line per model; with scores, the ratio of
  the atypical half's ``change_1`` to the typical half's at each depth;
- ``change_1`` against ``change_aligned`` per probe: aliasing shows as a 1-pixel step changing
  the features more than a step of the probe's whole stride;
- P(top-1 differs) between views d apart, the models' total strides marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from biasprobe import analysis as an
from biasprobe.core.errors import InputError
from biasprobe.core.io import companion, read_table
from biasprobe.core.schemas import LAYERS_TABLE, conform
from biasprobe.layers.summary import LayersSummary
from biasprobe.report.figures import COLOURS, figure_uri
from biasprobe.report.inputs import ReportInputs, distinct_label

__all__ = ["LayersInput", "layers_section", "read_layers"]

NO_LAYERS = ("No layers file was given (--layers, the output of 'biasprobe layers'): where in the network "
             "invariance is lost is not shown.")  # fmt: skip
CURVE_PROTOCOLS = ("circular", "crop", "black", "inpaint", "scale")


@dataclass(frozen=True, eq=False)
class LayersInput:
    """One ``biasprobe layers`` output: its rows and its summary, under a model label."""

    path: Path
    model: str
    table: pd.DataFrame
    summary: LayersSummary


def read_layers(paths: Sequence[str | Path]) -> tuple[LayersInput, ...]:
    """Read each layers table and its summary; a model measured twice is told apart by file."""
    out: list[LayersInput] = []
    taken: set[str] = set()
    for p in paths:
        path = Path(p)
        table = conform(read_table(path), LAYERS_TABLE, what=str(path))
        if table.empty:
            raise InputError(f"{path} holds no image (an empty 'layers' table): run 'biasprobe layers' again on usable images")
        summary = LayersSummary.read(companion(path, "summary"))
        model = str(summary.model.get("model", "")) or path.stem
        model = distinct_label(model, path, taken)
        out.append(LayersInput(path, model, table, summary))
    return tuple(out)


def _skipped(path: Path) -> pd.DataFrame:
    file = companion(path, "skipped")
    return read_table(file) if file.is_file() else pd.DataFrame()


def _pick(protocols: Sequence[str], preferred: Sequence[str]) -> str:
    return next((p for p in preferred if p in protocols), protocols[0])


def _x(entry: dict[str, Any], emb_x: float) -> float:
    return emb_x if entry["probe"] == "embedding" else math.log2(entry["stride"])


def _value(entry: dict[str, Any], key: str) -> float:
    v = entry.get(key)
    v = v.get("value") if isinstance(v, dict) else v
    return float(v) if v is not None else float("nan")


def _stride_axis(ax: Any, emb_x: float, top: int, *, label: str = "probe: cumulative stride (emb. = the embedding)") -> None:
    ticks = list(range(int(math.log2(top)) + 1))
    ax.set_xticks([*ticks, emb_x], [str(2**t) for t in ticks] + ["emb."], fontsize=8)
    ax.set_xlabel(label, fontsize=9)
    ax.grid(alpha=0.3)


def _halves_ratio(layer: LayersInput, protocol: str, halves: pd.Series) -> dict[str, float]:
    rows = layer.table[layer.table["protocol"] == protocol]
    half = rows["image_id"].astype(str).map(halves)
    means = rows.assign(half=half).groupby(["probe", "half"])["change_1"].mean().unstack()
    if not {"typical", "atypical"} <= set(means.columns):
        return {}
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = means["atypical"] / means["typical"]
    return {str(k): float(v) for k, v in ratio.items()}


def _depth_figure(layers: Sequence[LayersInput], protocol: str, ratios: dict[str, dict[str, float]]) -> str:
    top = max(layer.summary.total_stride for layer in layers)
    emb_x = math.log2(top) + 1
    panels = 2 if ratios else 1
    fig = Figure(figsize=(5.2 * panels, 3.3), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for i, layer in enumerate(layers):
        entries = layer.summary.protocols.get(protocol, [])
        colour = COLOURS[i % len(COLOURS)]
        xs = [_x(e, emb_x) for e in entries]
        axes[0].plot(xs, [_value(e, "instability") for e in entries], marker="o", color=colour, label=layer.model)
        if layer.model in ratios:
            axes[1].plot(xs, [ratios[layer.model].get(e["probe"], np.nan) for e in entries], marker="o", color=colour,
                         label=layer.model)  # fmt: skip
    axes[0].set_yscale("log")
    axes[0].set_ylabel("instability = change_1 / spread", fontsize=9)
    axes[0].set_title(f"{protocol}: a 1-pixel step, relative to how far apart images are", fontsize=9)
    if ratios:
        axes[1].axhline(1.0, color=COLOURS[5], linewidth=0.8, linestyle=":")
        axes[1].set_ylabel("change_1: atypical half / typical half", fontsize=9)
        axes[1].set_title(f"{protocol}: where typical and atypical images part ways", fontsize=9)
    for ax in axes:
        _stride_axis(ax, emb_x, top)
    axes[0].legend(fontsize=8, frameon=False)
    return figure_uri(fig)


def _aliasing_figure(layers: Sequence[LayersInput], protocol: str) -> str:
    fig = Figure(figsize=(min(3.4 * len(layers), 12.0) + 0.6, 3.1), layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False, sharey=True)[0]
    for ax, layer in zip(axes, layers, strict=True):
        entries = layer.summary.protocols.get(protocol, [])
        top = layer.summary.total_stride
        emb_x = math.log2(top) + 1
        xs = [_x(e, emb_x) for e in entries]
        ax.plot(xs, [_value(e, "change_1") for e in entries], marker="o", color=COLOURS[1], label="1-pixel step (change_1)")
        ax.plot(xs, [_value(e, "change_aligned") for e in entries], marker="s", color=COLOURS[0],
                label="a whole-stride step (change_aligned)")  # fmt: skip
        ax.set_yscale("log")
        ax.set_title(layer.model, fontsize=9)
        _stride_axis(ax, emb_x, top, label="probe stride")
    axes[0].set_ylabel(f"mean 1 - cos, {protocol}", fontsize=9)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=2, fontsize=8, frameon=False)
    return figure_uri(fig)


def _curve_figure(curves: pd.DataFrame, strides: dict[str, int]) -> str:
    protocols = [p for p in CURVE_PROTOCOLS if p in set(curves["protocol"])]
    ncols = min(3, len(protocols))
    nrows = -(-len(protocols) // ncols)
    fig = Figure(figsize=(3.8 * ncols + 0.6, 2.8 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    models = list(dict.fromkeys(curves["model"]))
    for k, protocol in enumerate(protocols):
        ax = axes[k // ncols][k % ncols]
        rows = curves[curves["protocol"] == protocol]
        for i, model in enumerate(models):
            mine = rows[rows["model"] == model]
            colour = COLOURS[i % len(COLOURS)]
            ax.plot(mine["d"], mine["p_differs"], marker=".", color=colour, label=model)
            ax.fill_between(mine["d"], mine["ci_low"], mine["ci_high"], color=colour, alpha=0.15, linewidth=0)
            stride = strides.get(model)
            if stride and len(mine):
                for m in range(stride, int(mine["d"].max()) + 1, stride):
                    ax.axvline(m, color=colour, linestyle=":", linewidth=0.9, alpha=0.7)
        ax.set_title(protocol, fontsize=10)
        ax.set_xlabel("views d steps apart", fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if k % ncols == 0:
            ax.set_ylabel("P(top-1 differs)", fontsize=9)
    for k in range(len(protocols), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=min(3, len(models)), fontsize=8, frameon=False)
    return figure_uri(fig)


def _times(factor: float) -> str:
    """A ratio in words: '2.3x', or 'over 1000x' (a whole-stride step then changes ~nothing)."""
    if factor > 1000:
        return "over 1000x"
    return f"{factor:.0f}x" if factor >= 10 else f"{factor:.2g}x"


def _aliasing_words(median: float) -> str:
    if median > 1.5:
        return ": aliasing at the strides"
    if median < 1:
        return ": no sign of aliasing (the features follow a whole-stride step less well than a 1-pixel one)"
    return ""


def _finding(layer: LayersInput, protocol: str, alias_protocol: str, ratio: dict[str, float]) -> str:
    entries = layer.summary.protocols.get(protocol, [])
    inst = [(_value(e, "instability"), e) for e in entries]
    known = [(v, e) for v, e in inst if np.isfinite(v)]
    words = [f"{layer.model}:"]
    if len(known) >= 2:
        first, last = known[0], known[-1]
        jumps = [(b[0] / a[0], b[1]) for a, b in pairwise(known) if a[0] > 0]
        words.append(f"under {protocol}, instability goes from {first[0]:.2g} at the first probe (stride "
                     f"{first[1]['stride']}) to {last[0]:.2g} at the embedding")  # fmt: skip
        if jumps:
            factor, where = max(jumps, key=lambda j: j[0])
            name = "the embedding" if where["probe"] == "embedding" else f"probe {where['probe']} (stride {where['stride']})"
            words[-1] += f"; it grows most, {_times(factor)}, at {name}."
        else:
            words[-1] += "."
    aliased = []
    for e in layer.summary.protocols.get(alias_protocol, []):
        c1, ca = _value(e, "change_1"), _value(e, "change_aligned")
        if e["stride"] > 1 and e["probe"] != "embedding" and np.isfinite(c1) and np.isfinite(ca) and ca > 0:
            aliased.append(c1 / ca)
    if aliased:
        median = float(np.median(aliased))
        probes_text = "its strided probe" if len(aliased) == 1 else f"its {len(aliased)} strided probes"
        words.append(f"Under {alias_protocol}, at {probes_text} where a whole-stride step fits in the views, a 1-pixel step "
                     f"changes the features {_times(median)} as much as a whole-stride step"
                     f"{' (median)' if len(aliased) > 1 else ''}{_aliasing_words(median)}.")  # fmt: skip
    if ratio:
        emb = ratio.get("embedding", float("nan"))
        if np.isfinite(emb):
            words.append(f"At the embedding a 1-pixel step moves atypical images {emb:.2g}x as far as typical ones.")
    return " ".join(words)


def layers_section(paths: Sequence[str | Path], inputs: ReportInputs, *, seed: int = 0) -> dict[str, Any]:
    """The section's values: figures, a table per model, plain-language findings, or why not."""
    curves = pd.concat([an.shift_distance(inv.views, model=inv.model, seed=seed)
                        for inv in inputs.invariance if not inv.views.empty] or [pd.DataFrame()])  # fmt: skip
    layers = read_layers(paths)
    strides = {}
    for inv in inputs.invariance:
        base = str(inv.summary.get("model", {}).get("model", ""))
        match = [layer.summary.total_stride for layer in layers if layer.summary.model.get("model") == base]
        if match:
            strides[inv.model] = match[0]
    has_curves = not curves.empty and bool(set(curves["protocol"]) & set(CURVE_PROTOCOLS))
    out: dict[str, Any] = {
        "why": "" if layers else NO_LAYERS,
        "curves": _curve_figure(curves, strides) if has_curves else "",
        "curves_why": "" if has_curves else "No views table of a sequence protocol was found beside the invariance files.",
        "strides": ", ".join(f"{m} {s}" for m, s in strides.items()),
        "depth_figure": "", "aliasing_figure": "", "findings": [], "rows": [], "protocol": "", "alias_protocol": "",
        "halves": False,
        "provenance": [(f"layers {layer.model}: {layer.path.name}", layer.summary.to_json()) for layer in layers],
        "skipped": [{"stage": f"layers {layer.model}", "path": str(r.get("path", "")), "reason": str(r.get("reason", ""))}
                    for layer in layers for r in _skipped(layer.path).to_dict("records")],
    }  # fmt: skip
    if not layers:
        return out
    protocols = list(dict.fromkeys(p for layer in layers for p in layer.summary.protocols))
    protocol = _pick(protocols, an.PROTOCOL_ORDER)
    alias_protocol = _pick(protocols, ("circular", *an.PROTOCOL_ORDER))
    halves = an.assign_halves(inputs.scores) if inputs.scores is not None else pd.Series(dtype=object)
    ratios = {layer.model: r for layer in layers if len(halves) and (r := _halves_ratio(layer, protocol, halves))}
    out.update({
        "protocol": protocol, "alias_protocol": alias_protocol, "halves": bool(ratios),
        "depth_figure": _depth_figure(layers, protocol, ratios),
        "aliasing_figure": _aliasing_figure(layers, alias_protocol),
        "findings": [_finding(layer, protocol, alias_protocol, ratios.get(layer.model, {})) for layer in layers],
        "rows": [_row(layer, e, protocol, ratios.get(layer.model, {})) for layer in layers
                 for e in layer.summary.protocols.get(protocol, [])],
    })  # fmt: skip
    return out


def _sci(value: float) -> str:
    """Scientific notation with a minus sign that a table cell does not break at."""
    return "n/a" if not np.isfinite(value) else f"{value:.2e}".replace("-", "\u2212")


def _row(layer: LayersInput, e: dict[str, Any], protocol: str, ratio: dict[str, float]) -> dict[str, str]:
    ci = (e.get("change_1") or {}).get("ci") or [None, None]
    return {
        "model": layer.model, "protocol": protocol, "probe": str(e["probe"]), "stride": str(e["stride"]),
        "channels": str(e["channels"]), "change_1": _sci(_value(e, "change_1")),
        "change_1_ci": f"[{_sci(ci[0])}, {_sci(ci[1])}]" if ci[0] is not None and ci[1] is not None else "",
        "change_aligned": _sci(_value(e, "change_aligned")), "spread": _sci(_value(e, "spread")),
        "instability": _sci(_value(e, "instability")), "ratio": f"{ratio[e['probe']]:.2f}" if e["probe"] in ratio else "",
    }  # fmt: skip
