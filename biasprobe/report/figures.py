"""Report figures: matplotlib ``Figure`` objects (Agg canvas, no pyplot state) as inline PNG data URIs."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "box_centre_heatmap",
    "box_size_histogram",
    "decile_plot",
    "figure_uri",
    "fixes_plot",
    "scatter_plot",
    "shift_curve",
]

log = logging.getLogger(__name__)

COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#555555")
DPI = 100


def figure_uri(fig: Figure) -> str:
    """A PNG data: URI of a figure (no file, no network)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def decile_plot(
    tables: Sequence[tuple[str, pd.DataFrame]], *, column: str = "atypicality", metric: str = "p_change",
    ylabel: str = "P(top-1 change)",
) -> str:
    """``metric`` per bin with its 95% CI band, one line per labelled decile table."""
    fig, ax = _figure(5.5, 3.2)
    for i, (label, table) in enumerate(tables):
        if table.empty:
            continue
        colour = COLOURS[i % len(COLOURS)]
        x = table["bin"].to_numpy()
        ax.plot(x, table[metric], marker="o", color=colour, label=label)
        ax.fill_between(x, table[f"{metric}_lo"], table[f"{metric}_hi"], color=colour, alpha=0.18, linewidth=0)
    k = max((len(t) for _, t in tables), default=10)
    ax.set_xlabel(f"{column.replace('_', ' ')} bin (1 = most typical, {k} = most atypical)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(1, k + 1))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if len(tables) > 1 or tables[0][0]:
        ax.legend(fontsize=8, frameon=False)
    return figure_uri(fig)


def scatter_plot(atypicality: np.ndarray, p_change: np.ndarray, *, seed: int = 0) -> str:
    """Atypicality vs per-image P(top-1 change), jittered vertically so ties stay visible."""
    fig, ax = _figure(5.5, 3.2)
    rng = np.random.default_rng(seed)
    y = np.asarray(p_change, dtype=float)
    jitter = rng.uniform(-0.006, 0.006, y.size)
    ax.scatter(atypicality, y + jitter, s=9, alpha=0.5, color=COLOURS[0], linewidths=0)
    ax.set_xlabel("atypicality (0 = most typical, 1 = most atypical)")
    ax.set_ylabel("P(top-1 change) per image")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    return figure_uri(fig)


def box_centre_heatmap(train: np.ndarray | None, test: np.ndarray | None) -> str:
    """2-D histograms of normalised box centres (cx, cy), training beside test."""
    sets = [(name, xy) for name, xy in (("training", train), ("test", test)) if xy is not None and len(xy)]
    fig = Figure(figsize=(3.3 * len(sets), 3.2), layout="constrained")
    for i, (name, xy) in enumerate(sets):
        ax = fig.add_subplot(1, len(sets), i + 1)
        h = ax.hist2d(xy[:, 0], xy[:, 1], bins=12, range=[[0, 1], [0, 1]], cmap="viridis", density=True)
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.set_title(f"{name} (n = {len(xy)})", fontsize=9)
        ax.set_xlabel("centre x")
        ax.set_ylabel("centre y")
        fig.colorbar(h[3], ax=ax, shrink=0.8)
    return figure_uri(fig)


def box_size_histogram(train: np.ndarray | None, test: np.ndarray | None) -> str:
    """Histograms of log relative box size, training vs test (densities)."""
    fig, ax = _figure(5.2, 3.0)
    values = [v for v in (train, test) if v is not None and len(v)]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=20).tolist()
    for i, (name, v) in enumerate((("training", train), ("test", test))):
        if v is not None and len(v):
            ax.hist(v, bins=edges, density=True, alpha=0.5, color=COLOURS[i], label=f"{name} (n = {len(v)})")
    ax.set_xlabel("log relative box size  log(sqrt(box area / image area))")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, frameon=False)
    return figure_uri(fig)


def shift_curve(views: pd.DataFrame) -> str:
    """Probability of the x_0 top-1 class vs shift step (the jagged curve), per-view kNN distance
    on a second axis, top-1 changes marked."""
    fig, ax = _figure(3.6, 2.1)
    views = views.sort_values("t")
    t = views["t"].to_numpy()
    ax.plot(t, views["p_k0"], color=COLOURS[0], linewidth=1.4)
    top1 = views["top1"].to_numpy()
    changes = np.nonzero(top1[1:] != top1[:-1])[0]
    for c in changes:
        ax.axvspan(t[c], t[c + 1], color=COLOURS[1], alpha=0.2, linewidth=0)
    ax.set_ylim(-0.03, 1.03)  # a curve at p = 0 or 1 stays visible inside the frame
    ax.set_xlabel("shift step t", fontsize=8)
    ax.set_ylabel("p(top-1 of x0)", fontsize=8, color=COLOURS[0])
    ax.tick_params(labelsize=7)
    knn = pd.to_numeric(views.get("knn_dist"), errors="coerce") if "knn_dist" in views else None
    if knn is not None and knn.notna().any():
        ax2 = ax.twinx()
        ax2.plot(t, knn, color=COLOURS[2], linewidth=1, linestyle="--")
        ax2.set_ylabel("view kNN dist", fontsize=8, color=COLOURS[2])
        ax2.tick_params(labelsize=7)
    return figure_uri(fig)


def fixes_plot(labels: Sequence[str], halves: Mapping[str, np.ndarray]) -> str:
    """P(top-1 change) on the typical and atypical halves per model (bars with CI whiskers).

    ``halves`` maps 'typical' and 'atypical' to (len(labels), 3) arrays of value, CI low and
    CI high (NaN where unknown), one row per label.
    """
    fig, ax = _figure(6.4, 3.2)
    x = np.arange(len(labels))
    for i, half in enumerate(("typical", "atypical")):
        values = np.asarray(halves[half], dtype=float).reshape(len(labels), 3)
        v, lo, hi = values[:, 0], values[:, 1], values[:, 2]
        err = np.vstack([v - lo, hi - v])
        ax.bar(x + (i - 0.5) * 0.38, v, width=0.38, yerr=np.nan_to_num(err), capsize=3,
               color=COLOURS[i], alpha=0.85, label=f"{half} half")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("P(top-1 change)")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return figure_uri(fig)
