"""A model's classes as plain values (``data.labels.ClassSpace``), for labelling its inputs.

A model whose class names are ImageNet-1k's 1,000 (EfficientNet-Lite0, and torchvision and timm
models with a 1,000-class head) also carries the wnids, so folders named ``n01440764`` ... get
its class indices without a classes file.
"""

from __future__ import annotations

from biasprobe.data.labels import ClassSpace
from biasprobe.models.imagenet import imagenet_class_names, imagenet_wnids
from biasprobe.models.spec import ProbeModel

__all__ = ["class_space"]


def class_space(model: ProbeModel) -> ClassSpace:
    """The classes ``model`` predicts: names, and the wnids when they are ImageNet-1k's."""
    names = tuple(model.class_names)
    imagenet = len(names) == 1000 and list(names) == imagenet_class_names()
    return ClassSpace(names, imagenet_wnids() if imagenet else None, model=model.name)
