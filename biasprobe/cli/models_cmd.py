"""``biasprobe models``: list the models it knows."""

from __future__ import annotations

import argparse

NAME = "models"
HELP = "list the models it knows, with input size, normalisation and weights source"
DESCRIPTION = HELP


def add_arguments(_p: argparse.ArgumentParser) -> None:
    """No flags."""


def run(_args: argparse.Namespace) -> int:
    from biasprobe.models.registry import list_models

    rows = []
    for entry in list_models():
        p = entry.preprocessing
        geometry = (
            f"{p.input_size}px mean={list(p.mean)} std={list(p.std)} crop_pct={p.crop_pct:.4g} max_shift={p.max_shift}"
            if p is not None
            else "from the architecture's own config"
        )
        rows.append((entry.name, entry.description, geometry, entry.weights_source))
    width = max(len(r[0]) for r in rows)
    for name, description, geometry, source in rows:
        print(f"{name:<{width}}  {description}")
        print(f"{'':<{width}}  input: {geometry}")
        print(f"{'':<{width}}  weights: {source}")
    return 0
