"""Checkpoints of the built-in world's CNNs: weights plus a JSON config (architecture,
preprocessing, classes, training options)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from biasprobe.core.errors import ModelError

__all__ = ["read_checkpoint"]


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """The state_dict and the config of a checkpoint written by ``biasprobe train``."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or "state_dict" not in data or "config" not in data:
        raise ModelError(f"{path} is not a biasprobe world checkpoint (expected state_dict and config)")
    return data["state_dict"], json.loads(data["config"])
