"""The world CNNs' names, input geometry and training augmentations, importable without torch
(``biasprobe train``'s parser reads them before any command runs; ``world.nets`` and
``world.train`` use them)."""

from __future__ import annotations

from biasprobe.core.preprocessing import Preprocessing

__all__ = ["AUGMENTS", "SCALE_RANGE", "WORLD_ARCHS", "WORLD_PREPROCESSING"]

WORLD_ARCHS = ("world_vgg", "world_resnet")
WORLD_PREPROCESSING = Preprocessing(
    input_size=48, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=48 / 56, max_shift=8
)
AUGMENTS = ("crop", "scale")
SCALE_RANGE = (0.75, 1.25)
