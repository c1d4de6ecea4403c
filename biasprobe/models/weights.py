"""Reading weights files safely (``torch.load(..., weights_only=True)``) and fitting them."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.core.torchfiles import load_problem

__all__ = ["load_into", "read_state_dict"]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain state_dict from a file holding one, or holding it under 'state_dict'/'model'."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files: say what the file is instead
        raise ModelError(f"cannot read weights {path}: it {load_problem(path, exc)}") from exc
    if isinstance(data, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelError(f"weights {path} hold no state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def load_into(net: nn.Module, state: dict[str, torch.Tensor], *, source: Path | str) -> None:
    """Load key-for-key, or raise a ModelError naming the file and what does not fit."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise ModelError(f"weights {source} do not fit the architecture: {'; '.join(parts)}")
    net.load_state_dict(state)
