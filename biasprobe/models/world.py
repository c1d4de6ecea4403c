"""The built-in world's small CNNs (``world_vgg``, ``world_resnet``), loaded from checkpoints
written by ``biasprobe train``: weights plus a JSON config (architecture, preprocessing,
classes, training options)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelError
from .registry import ModelEntry, register
from .spec import Preprocessing, ProbeModel, file_sha256
from .weights import load_into

__all__ = ["WORLD_ARCHS", "WORLD_PREPROCESSING", "read_checkpoint"]

WORLD_ARCHS = ("world_vgg", "world_resnet")
WORLD_PREPROCESSING = Preprocessing(
    input_size=48, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=48 / 56, max_shift=8
)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """The state_dict and the config of a checkpoint written by ``biasprobe train``."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or "state_dict" not in data or "config" not in data:
        raise ModelError(f"{path} is not a biasprobe world checkpoint (expected state_dict and config)")
    return data["state_dict"], json.loads(data["config"])


def _build_world(name: str, weights: Path | None) -> ProbeModel:
    from ..world.nets import build_net

    if weights is None:
        raise ModelError(f"{name} needs --weights FILE: a checkpoint written by 'biasprobe train --arch {name}'")
    state, config = read_checkpoint(weights)
    if config.get("arch") != name:
        raise ModelError(f"checkpoint {weights} holds {config.get('arch')!r}, not {name!r}")
    net = build_net(config)
    load_into(net, state, source=weights)
    prep = Preprocessing(**{**config["preprocessing"], "mean": tuple(config["preprocessing"]["mean"]), "std": tuple(config["preprocessing"]["std"])})
    return ProbeModel(
        net,
        name=name,
        preprocessing=prep,
        class_names=[str(c) for c in config["classes"]],
        weights_sha256=file_sha256(weights),
        weights_source=str(weights),
        config=config,
    )


for _arch, _what in zip(WORLD_ARCHS, ("VGG-like: conv stages, flatten + fully connected head", "ResNet-like: residual stages, stride 16, global average pooling"), strict=True):
    register(
        ModelEntry(
            name=_arch,
            description=f"built-in world CNN, {_what}",
            weights_source="--weights FILE from 'biasprobe train'",
            preprocessing=WORLD_PREPROCESSING,
            builder=_build_world,
        )
    )
