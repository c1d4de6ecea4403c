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


def scatter_plot(
    x: np.ndarray, p_change: np.ndarray, *, seed: int, jitter: float, xlabel: str,
    saturated_from: float | None = None,
) -> str:
    """One dot per image: ``x`` (kNN distance) vs P(top-1 change), jittered vertically by a uniform
    draw in [-jitter, jitter] (``numpy.random.default_rng(seed)``, in the rows' order) so ties show.

    The axes fit every dot (nothing is clipped); ``saturated_from``, when given, marks the kNN
    distance from which atypicality is 1.
    """
    fig, ax = _figure(5.5, 3.2)
    rng = np.random.default_rng(seed)
    y = np.asarray(p_change, dtype=float)
    ax.scatter(x, y + rng.uniform(-jitter, jitter, y.size), s=9, alpha=0.5, color=COLOURS[0], linewidths=0)
    if saturated_from is not None and np.isfinite(saturated_from):
        ax.axvline(saturated_from, color=COLOURS[5], linestyle="--", linewidth=1)
        ax.annotate("atypicality = 1 \u2192", (saturated_from, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -3), textcoords="offset points", ha="left", va="top", fontsize=7, color=COLOURS[5])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("P(top-1 change) per image")
    ax.margins(x=0.03, y=0.04)
    ax.grid(alpha=0.3)
    return figure_uri(fig)


HEATMAP_BINS = 24


def box_centre_heatmap(train: np.ndarray | None, test: np.ndarray | None, *, bins: int = HEATMAP_BINS) -> str:
    """Share of boxes per cell of a ``bins`` x ``bins`` grid of normalised box centres (cx, cy),
    training beside test on the same axes and one colour scale (square-root stretched)."""
    from matplotlib.colors import PowerNorm

    sets = [(name, xy) for name, xy in (("training", train), ("test", test)) if xy is not None and len(xy)]
    shares = [np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[[0, 1], [0, 1]])[0] / len(xy) for _, xy in sets]
    fig = Figure(figsize=(2.9 * len(sets) + 1.1, 3.3), layout="constrained")
    axes = fig.subplots(1, len(sets), squeeze=False, sharex=True, sharey=True)[0]
    norm = PowerNorm(0.5, vmin=0, vmax=max(float(h.max()) for h in shares) or 1)
    image = None
    for ax, (name, xy), share in zip(axes, sets, shares, strict=True):
        image = ax.imshow(share.T, extent=(0, 1, 1, 0), cmap="Blues", norm=norm, interpolation="nearest")
        ax.set_title(f"{name} (n = {len(xy)})", fontsize=9)
        ax.set_xlabel("centre x (0 = left)")
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        ax.tick_params(labelsize=7)
        for spine in ax.spines.values():
            spine.set_color("#999999")
    axes[0].set_ylabel("centre y (0 = top)")
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes), shrink=0.85)
        bar.set_label(f"share of boxes per cell ({bins} x {bins} grid)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
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


def fixes_plot(
    models: Sequence[str], protocols: Sequence[str], values: Mapping[tuple[str, str], Mapping[str, Sequence[float]]],
    *, flagged: frozenset[tuple[str, str]] = frozenset(),
) -> str:
    """P(top-1 change) on the typical and atypical halves: one panel per protocol, in each a pair
    of horizontal bars (with 95% CI whiskers and the value) per model, models in the same order in
    every panel. The figure grows with the number of models and protocols.

    ``values[(model, protocol)]`` maps 'typical' and 'atypical' to (value, CI low, CI high); a
    missing pair is shown as 'not measured'; ``flagged`` pairs are marked 'constant predictions'.
    """
    import textwrap

    ncols = min(3, len(protocols))
    nrows = -(-len(protocols) // ncols)
    fig = Figure(figsize=(3.6 * ncols + 1.6, nrows * (0.7 + 0.42 * len(models)) + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    y = np.arange(len(models))
    labels = [textwrap.fill(m, 24, break_on_hyphens=False, break_long_words=False) for m in models]
    for k, protocol in enumerate(protocols):
        ax = axes[k // ncols][k % ncols]
        top = 0.0
        for i, half in enumerate(("typical", "atypical")):
            rows = [values.get((m, protocol), {}).get(half, (np.nan,) * 3) for m in models]
            v, lo, hi = (np.asarray(col, dtype=float) for col in zip(*rows, strict=True))
            err = np.nan_to_num(np.vstack([v - lo, hi - v]))
            ax.barh(y + (i - 0.5) * 0.4, v, height=0.4, xerr=err, capsize=2, color=COLOURS[i], alpha=0.85,
                    error_kw={"linewidth": 0.8}, label=f"{half} half")
            ends = np.fmax(v, hi)
            top = max(top, float(np.nanmax(ends)) if np.isfinite(ends).any() else 0.0)
            for yy, value, end in zip(y + (i - 0.5) * 0.4, v, ends, strict=True):
                if np.isfinite(value):
                    ax.annotate(f"{value:.3f}", (end if np.isfinite(end) else value, yy), xytext=(2, 0),
                                textcoords="offset points", va="center", fontsize=7)
        for j, m in enumerate(models):
            if (m, protocol) not in values:
                ax.annotate("not measured", (0, j), xytext=(3, 0), textcoords="offset points", va="center",
                            fontsize=7, color=COLOURS[5])
            elif (m, protocol) in flagged:
                ax.annotate("constant predictions", (0.99, j), xycoords=("axes fraction", "data"), ha="right",
                            va="center", fontsize=7, color=COLOURS[1], fontweight="bold",
                            bbox={"facecolor": "white", "edgecolor": COLOURS[1], "alpha": 0.85, "pad": 1.5})
        ax.set_ylim(len(models) - 0.5, -0.5)  # the first model on top
        ax.set_xlim(0, max(top * 1.3, 0.01))
        ax.set_title(protocol, fontsize=10)
        ax.set_yticks(y, labels, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3, axis="x")
        if k // ncols == nrows - 1 or k + ncols >= len(protocols):
            ax.set_xlabel("P(top-1 change)", fontsize=9)
    for k in range(len(protocols), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=2, fontsize=9, frameon=False)
    return figure_uri(fig)
