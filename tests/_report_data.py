"""Synthetic score and invariance tables (the stage contracts) for the analysis and report tests."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.io import companion, write_json, write_table
from biasprobe.data.sources import BUILTIN_PHOTOS, bundled_photo_paths


def make_scores(n: int = 200, *, seed: int = 0, boxes: bool = False, paths: list[str] | None = None) -> pd.DataFrame:
    """One row per image; atypicality uniform in [0, 1]."""
    rng = np.random.default_rng(seed)
    ids = [f"{i:016x}" for i in range(1, n + 1)]
    paths = paths or [f"img/{i:04d}.png" for i in range(n)]
    atyp = rng.uniform(0, 1, n)
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "path": [paths[i % len(paths)] for i in range(n)],
            "label": pd.array(rng.integers(0, 3, n), dtype="Int64"),
            "label_name": [f"class{i % 3}" for i in range(n)],
            "knn_dist": 0.5 + atyp,
            "atypicality": atyp,
            "in_train": np.arange(n) < 2,
            "neighbor_ids": [[f"{j:016x}" for j in range(3)] for _ in range(n)],
            "neighbor_paths": [[paths[(i + j + 1) % len(paths)] for j in range(3)] for i in range(n)],
            "neighbor_dists": [[0.4, 0.5, 0.6] for _ in range(n)],
        }
    )
    if boxes:
        frame["box_cx"] = rng.uniform(0.2, 0.8, n)
        frame["box_cy"] = rng.uniform(0.2, 0.8, n)
        frame["box_log_size"] = rng.normal(-0.7, 0.2, n)
        frame["pose_atypicality"] = np.clip(atyp + rng.normal(0, 0.2, n), 0, 1)
    return frame


def make_invariance(
    scores: pd.DataFrame,
    *,
    model: str = "world_vgg",
    protocols: tuple[str, ...] = ("crop",),
    effect: float = 0.4,
    base: float = 0.02,
    pairs: int = 8,
    seed: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows per image and protocol whose flip rate grows with atypicality by ``effect``; views too."""
    rng = np.random.default_rng(seed)
    rows, views = [], []
    for protocol in protocols:
        for rec in scores.itertuples(index=False):
            p = min(1.0, base + effect * rec.atypicality**2)
            top = [int(rec.label)]
            for _ in range(pairs):
                top.append(int(rng.integers(0, 3)) if rng.uniform() < p else top[-1])
            flips = sum(a != b for a, b in itertools.pairwise(top))
            pk = np.clip(0.8 - 0.3 * rec.atypicality + np.cumsum(rng.normal(0, 0.03 + 0.1 * p, pairs + 1)), 0, 1)
            correct = bool(rng.uniform() < 0.9 - 0.4 * rec.atypicality)
            rows.append(
                {
                    "image_id": rec.image_id, "path": rec.path, "label": rec.label, "protocol": protocol,
                    "model": model, "pairs": pairs, "flips": flips, "p_change": flips / pairs,
                    "consistency": 1 - flips / pairs, "mac_top1": float(np.abs(np.diff(pk)).mean()),
                    "mac_true": float(np.abs(np.diff(pk)).mean()), "prob_range": float(np.ptp(pk)),
                    "n_labels": len(set(top)), "correct0": correct,
                    "frac_correct": float(np.mean([t == rec.label for t in top])), "top0": top[0],
                    "p_top0": float(np.clip(0.95 - 0.5 * rec.atypicality + rng.normal(0, 0.05), 0.05, 1)),
                    "label_name": rec.label_name, "top0_name": f"class{top[0]}",
                }
            )
            for t in range(pairs + 1):
                views.append(
                    {
                        "image_id": rec.image_id, "protocol": protocol, "t": t, "top1": top[t],
                        "p_k0": float(pk[t]), "p_true": float(pk[t]), "knn_dist": float(rec.knn_dist + 0.02 * t),
                        "dx": t, "dy": t,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["label"] = frame["label"].astype("Int64")
    frame["correct0"] = frame["correct0"].astype("boolean")
    return frame, pd.DataFrame(views)


def write_stage_files(folder: Path, *, n: int = 60, models: tuple[str, ...] = ("world_vgg",), boxes: bool = False,
                      protocols: tuple[str, ...] = ("crop", "black"), paths: list[str] | None = None,
                      images_root: str = BUILTIN_PHOTOS) -> tuple[Path, list[Path]]:
    """Scores and invariance files with companions in ``folder``; paths default to the bundled photos.

    The invariance summaries record ``images_root`` at their top level, as every stage summary does.
    """
    folder.mkdir(parents=True, exist_ok=True)
    photo_paths = paths or [str(p) for p in bundled_photo_paths().values()]
    scores = make_scores(n, boxes=boxes, paths=photo_paths)
    scores_path = write_table(scores, folder / "scores.parquet")
    write_json({"index": {"model": models[0], "count": 1000, "dim": 64}, "k": 10}, companion(scores_path, "summary"))
    write_table(pd.DataFrame({"path": ["bad.png"], "reason": ["cannot decode image bad.png"]}),
                companion(scores_path, "skipped"))
    inv_paths = []
    for i, model in enumerate(models):
        inv, views = make_invariance(scores, model=model, protocols=protocols, effect=0.4 / (1 + 3 * i), seed=i + 1)
        path = write_table(inv, folder / f"inv_{model}.parquet")
        write_table(views, companion(path, "views"))
        summary = {
            "model": {"model": model, "weights_sha256": "ab" * 32, "layer": "input of fc"},
            "parameters": {"protocols": list(protocols), "seed": 0},
            "images_root": images_root,
            "versions": {"torch": "2.14.1"},
            "command": ["biasprobe", "invariance", "--model", model],
        }
        (companion(path, "summary")).write_text(json.dumps(summary))
        write_table(pd.DataFrame({"path": [], "reason": []}, dtype=str), companion(path, "skipped"))
        inv_paths.append(path)
    return scores_path, inv_paths
