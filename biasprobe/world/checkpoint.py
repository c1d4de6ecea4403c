"""Checkpoints of the built-in world's CNNs: weights plus a JSON config (architecture,
preprocessing, classes, training options), written and read here and nowhere else."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import torch

from biasprobe.core.errors import ModelError
from biasprobe.core.io import atomic_write_bytes
from biasprobe.core.torchfiles import load_problem

__all__ = ["read_checkpoint", "write_checkpoint"]


def write_checkpoint(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, object], path: Path) -> Path:
    """Write ``{"state_dict", "config"}`` (config as JSON) with ``torch.save``, atomically."""
    buffer = io.BytesIO()
    state = {k: v.detach().contiguous() for k, v in state_dict.items()}
    torch.save({"state_dict": state, "config": json.dumps(config)}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """The state_dict and the config of a checkpoint written by ``biasprobe train``."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files: say what the file is instead
        problem = load_problem(path, exc, what="a world checkpoint", hint="write one with 'biasprobe train'")
        raise ModelError(f"cannot read checkpoint {path}: it {problem}") from exc
    if not isinstance(data, dict) or "state_dict" not in data or "config" not in data:
        raise ModelError(f"{path} is not a biasprobe world checkpoint (expected state_dict and config)")
    return data["state_dict"], json.loads(data["config"])
