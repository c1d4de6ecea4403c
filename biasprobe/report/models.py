"""The 'models' section: several models' invariance tables on the same images side by side
(``analysis.compare_model_tables``): accuracy, P(top-1 change) and consistency with their CIs per
model and protocol, one figure of accuracy against P(top-1 change), and the answer to "are the
more accurate models the more consistent ones here?" computed from those numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe import analysis as an
from biasprobe.core.errors import InputError
from biasprobe.core.io import read_table
from biasprobe.report.figures import COLOURS, figure_uri
from biasprobe.report.formatting import fmt, fmt_ci

__all__ = ["NO_MODELS", "models_figure", "models_section"]

NO_MODELS = {"why": "No invariance tables of several models on the same images were given (--models, outputs of "
                    "'biasprobe invariance', one per model): the models are not compared.",
             "rows": [], "answers": [], "figure": "", "note": ""}  # fmt: skip


def _labelled(files: Sequence[str | Path]) -> list[tuple[str, pd.DataFrame]]:
    """(name, rows) per file: the table's model, or with its file name when a model comes twice."""
    tables = []
    for file in files:
        path = Path(file)
        frame = read_table(path)
        if frame.empty:
            raise InputError(f"{path} holds no image (an empty invariance table): run 'biasprobe invariance' again")
        names = frame["model"].astype(str).unique() if "model" in frame.columns else [path.stem]
        if len(names) != 1:
            raise InputError(f"{path} holds {len(names)} models ({', '.join(map(str, names))}); --models takes one "
                             "invariance table per model")  # fmt: skip
        tables.append((str(names[0]), frame, path.stem))
    counts = pd.Series([name for name, _, _ in tables]).value_counts()
    return [(f"{name} ({stem})" if counts[name] > 1 else name, frame) for name, frame, stem in tables]


def models_figure(table: pd.DataFrame) -> str:
    """One small panel per protocol: accuracy (x) against P(top-1 change) (y) per model with
    both 95% CIs as bars; without labels, P(top-1 change) per model."""
    from matplotlib.figure import Figure

    protocols = list(dict.fromkeys(table["protocol"]))
    models = list(dict.fromkeys(table["model"]))
    cols = min(len(protocols), 3)
    rows = math.ceil(len(protocols) / cols)
    fig = Figure(figsize=(3.3 * cols + 0.2, 2.9 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, protocol in enumerate(protocols):
        ax = axes[k // cols][k % cols]
        part = table[table["protocol"] == protocol]
        labelled = part["accuracy"].notna().any()
        for i, model in enumerate(models):
            r = part[part["model"] == model]
            if r.empty:
                continue
            r = r.iloc[0]
            y, yerr = r["p_change"], [[r["p_change"] - r["p_change_lo"]], [r["p_change_hi"] - r["p_change"]]]
            if labelled:
                x, xerr = r["accuracy"], [[r["accuracy"] - r["accuracy_lo"]], [r["accuracy_hi"] - r["accuracy"]]]
            else:
                x, xerr = float(i), None
            ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", color=COLOURS[i % len(COLOURS)], capsize=3,
                        label=model if k == 0 else None)
        if labelled:
            ax.set_xlabel("accuracy x0", fontsize=8)
            ax.set_xlim(-0.03, 1.03)
        else:
            ax.set_xticks(range(len(models)))
            ax.set_xticklabels([f"m{i + 1}" for i in range(len(models))], fontsize=8)
            ax.set_xlabel("model (no labels: accuracy unknown)", fontsize=8)
        ax.set_ylabel("P(top-1 change)", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.set_title(protocol, fontsize=9)
        ax.tick_params(labelsize=7)
    for k in range(len(protocols), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.legend(loc="outside lower center", ncols=min(len(models), 4), fontsize=8, frameon=False)
    return figure_uri(fig)


def models_section(files: Sequence[str | Path], *, seed: int = 0, note: str = "") -> dict[str, object]:
    """The section's values: a row per model and protocol, an answer per protocol, the figure;
    ``note``, when given, is said before the computed notes."""
    if not files:
        return dict(NO_MODELS)
    tables = _labelled(files)
    table = an.compare_model_tables(tables, seed=seed)
    rows = [{
        "model": r["model"], "protocol": r["protocol"], "n": int(r["n"]),
        "accuracy": fmt(r["accuracy"]), "accuracy_ci": fmt_ci(r["accuracy_lo"], r["accuracy_hi"]),
        "p_change": fmt(r["p_change"]), "p_change_ci": fmt_ci(r["p_change_lo"], r["p_change_hi"]),
        "consistency": fmt(r["consistency"]) if np.isfinite(r["consistency"]) else "",
        "consistency_ci": fmt_ci(r["consistency_lo"], r["consistency_hi"]),
    } for _, r in table.iterrows()]  # fmt: skip
    protocols = list(dict.fromkeys(table["protocol"]))
    measured = {name: sorted(set(frame["protocol"].astype(str))) for name, frame in tables}
    extra = {name: [p for p in found if p not in protocols] for name, found in measured.items()}
    dropped = table.groupby("model", sort=False)["dropped"].max()
    notes = [*([note] if note else []), f"Compared under the protocols every model measured: {', '.join(protocols)}."]
    if any(extra.values()):
        notes.append("Measured by some models only (not compared): " + "; ".join(
            f"{name}: {', '.join(found)}" for name, found in extra.items() if found) + ".")
    if dropped.any():
        notes.append("Images not measured by every model are left out: " + ", ".join(
            f"{name} {int(n)}" for name, n in dropped.items() if n) + ".")
    return {
        "why": "", "rows": rows, "figure": models_figure(table), "note": " ".join(notes),
        "answers": [an.accuracy_consistency_answer(table, p) for p in protocols],
    }
