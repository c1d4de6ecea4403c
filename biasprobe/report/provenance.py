"""The provenance section: where every input came from (the stage summaries and the index's
meta.json as recorded) and the analysis settings. The report folds each record under a one-line
``summary_line`` (file, model, weights, seed, command)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe import __version__
from biasprobe.analysis import N_BOOTSTRAP, N_PERMUTATIONS
from biasprobe.report.inputs import ReportInputs, recorded_images_root

__all__ = ["analysis_provenance", "input_provenance", "summary_line"]

Item = tuple[str, object]


def input_provenance(inputs: ReportInputs) -> list[Item]:
    """(title, record) per input file: each invariance summary's model, parameters, images,
    images root, versions and command; the scores summary and the index meta.json whole."""
    items: list[Item] = []
    for inv in inputs.invariance:
        s = inv.summary
        items.append((f"invariance file {inv.model}", {
            "file": str(inv.path), "model": s.get("model", {}), "parameters": s.get("parameters", {}),
            "images": s.get("images"), "images_root": recorded_images_root(s), "versions": s.get("versions", {}),
            "command": s.get("command"),
        }))
    if inputs.scores_path is not None:
        items.append(("scores file", {"file": str(inputs.scores_path), **inputs.scores_summary}))
    if inputs.index_meta:
        items.append(("index meta.json", {"folder": str(inputs.index_path), **inputs.index_meta}))
    return items


def analysis_provenance(*, seed: int, command: list[str] | None) -> Item:
    """The resampling settings, library versions and the report's own command line."""
    return ("analysis", {
        "bootstrap_resamples": N_BOOTSTRAP, "permutations": N_PERMUTATIONS, "seed": seed, "bins": 10,
        "ci": "percentile 95%", "biasprobe": __version__, "numpy": np.__version__, "pandas": pd.__version__,
        "report command": command,
    })


def summary_line(record: object, limit: int = 90) -> str:
    """'inv.parquet; model world_vgg; weights b9713685b6f5...; command biasprobe demo --out x' (what
    the record has of these), for the folded record's summary."""
    if not isinstance(record, Mapping):
        return ""
    parts = []
    where = record.get("file") or record.get("folder")
    if where:
        parts.append(Path(str(where)).name)
    model = record.get("model")
    name, sha = (model.get("model"), model.get("weights_sha256")) if isinstance(model, Mapping) else (model, None)
    sha = sha or record.get("weights_sha256")
    if name:
        parts.append(f"model {name}")
    if isinstance(sha, str) and sha:
        parts.append(f"weights {sha[:12]}...")
    if record.get("seed") is not None:
        parts.append(f"seed {record['seed']}")
    command = record.get("command") or record.get("report command")
    if isinstance(command, list) and command:
        text = " ".join(str(c) for c in command)
        parts.append("command " + (text if len(text) <= limit else text[: limit - 3] + "..."))
    return "; ".join(parts)
