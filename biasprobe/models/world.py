"""The built-in world's small CNNs (``world_vgg``, ``world_resnet``), loaded from checkpoints
written by ``biasprobe train``: weights plus a JSON config (architecture, preprocessing,
classes, training options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from biasprobe.core.errors import ModelError
from biasprobe.core.hashing import file_sha256
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.models.spec import ProbeModel
from biasprobe.models.weights import load_into
from biasprobe.world.checkpoint import read_checkpoint
from biasprobe.world.nets import build_net

__all__ = ["build_world"]


def build_world(name: str, weights: Path | None) -> ProbeModel:
    if weights is None:
        raise ModelError(f"{name} needs --weights FILE: a checkpoint written by 'biasprobe train --arch {name}'")
    state, config = read_checkpoint(weights)
    if config.get("arch") != name:
        raise ModelError(f"checkpoint {weights} holds {config.get('arch')!r}, not {name!r}")
    net = build_net(config)
    load_into(net, state, source=weights)
    raw = cast("dict[str, Any]", config["preprocessing"])  # JSON written by 'biasprobe train'
    prep = Preprocessing(**{**raw, "mean": tuple(raw["mean"]), "std": tuple(raw["std"])})
    return ProbeModel(
        net,
        name=name,
        preprocessing=prep,
        class_names=[str(c) for c in cast("list[object]", config["classes"])],
        weights_sha256=file_sha256(weights),
        weights_source=str(weights),
        config=config,
    )
