"""The built-in world's small CNNs, stand-ins for the paper's two families.

- ``world_vgg``: three stages of two 3x3 conv + BN + ReLU, each closed by a 2x2 max-pool
  (total stride 8), then flatten and a fully connected head (hidden layer, then the
  classifier), like VGG16: the head sees *where* features are.
- ``world_resnet``: a 3x3 stem, then four residual stages of basic blocks whose first conv
  has stride 2 (total stride 16), global average pooling and the classifier, like ResNet50.

Both end in an ``nn.Linear`` classifier whose input is the embedding (docs/protocols.md section 4).
``antialias`` inserts timm's ``BlurPool2d`` before every stride (Zhang 2019): a stride-2
max-pool becomes max-pool stride 1 + blur stride 2; a stride-2 conv becomes conv stride 1
+ BN + ReLU + blur stride 2; a stride-2 1x1 shortcut becomes blur stride 2 + 1x1 conv.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized

import torch
from timm.layers import BlurPool2d
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.world.choices import WORLD_ARCHS, WORLD_PREPROCESSING

__all__ = ["NET_DEFAULTS", "WORLD_ARCHS", "WORLD_PREPROCESSING", "build_net", "net_config"]


NET_DEFAULTS: dict[str, dict[str, int]] = {
    "world_vgg": {"width": 16, "hidden": 128, "blur_size": 3},
    "world_resnet": {"width": 16, "blocks": 1, "blur_size": 3},
}


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _downsample_pool(channels: int, *, antialias: bool, blur_size: int) -> list[nn.Module]:
    if antialias:
        return [nn.MaxPool2d(2, stride=1), BlurPool2d(channels, filt_size=blur_size, stride=2)]
    return [nn.MaxPool2d(2, stride=2)]


class WorldVGG(nn.Module):
    """Conv stages (stride 8), flatten, fully connected head."""

    def __init__(self, *, num_classes: int, input_size: int, width: int, hidden: int,
                 antialias: bool, blur_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for stage in range(3):
            cout = width * 2**stage
            layers += _conv_bn_relu(cin, cout) + _conv_bn_relu(cout, cout)
            layers += _downsample_pool(cout, antialias=antialias, blur_size=blur_size)
            cin = cout
        self.features = nn.Sequential(*layers)
        side = input_size // 8
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(inplace=True))
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.features(x)))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut; the first conv carries the block's stride."""

    def __init__(self, cin: int, cout: int, *, stride: int, antialias: bool, blur_size: int) -> None:
        super().__init__()
        if stride > 1 and antialias:
            first = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                     BlurPool2d(cout, filt_size=blur_size, stride=stride)]
        else:
            first = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*first, nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        elif antialias and stride > 1:
            self.shortcut = nn.Sequential(BlurPool2d(cin, filt_size=blur_size, stride=stride),
                                          nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class WorldResNet(nn.Module):
    """Stem, four residual stages (total stride 16), global average pooling, classifier."""

    def __init__(self, *, num_classes: int, width: int, blocks: int, antialias: bool, blur_size: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(3, width))
        stages: list[nn.Module] = []
        cin = width
        for stage in range(4):
            cout = width * 2**stage
            for b in range(blocks):
                stages.append(BasicBlock(cin, cout, stride=2 if b == 0 else 1, antialias=antialias, blur_size=blur_size))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))


def net_config(arch: str, *, antialias: bool = False, num_classes: int = 10, input_size: int = 48,
               **overrides: int | None) -> dict[str, object]:
    """The architecture part of a checkpoint config: defaults of ``arch`` plus overrides."""
    if arch not in NET_DEFAULTS:
        raise ModelError(f"unknown world architecture {arch!r}; expected one of {', '.join(NET_DEFAULTS)}")
    unknown = set(overrides) - set(NET_DEFAULTS[arch])
    if unknown:
        raise ModelError(f"{arch} has no option {sorted(unknown)}; it takes {sorted(NET_DEFAULTS[arch])}")
    return {"arch": arch, "antialias": bool(antialias), "num_classes": num_classes, "input_size": input_size,
            **NET_DEFAULTS[arch], **{k: v for k, v in overrides.items() if v is not None}}


def _whole(value: object, key: str) -> int:
    """A whole-number setting of a checkpoint config (JSON gives an int, a float or a string)."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise ModelError(f"checkpoint setting {key!r} must be a number, got {value!r}")


def _num_classes(config: Mapping[str, object]) -> int:
    """``num_classes``, else the length of ``classes``, else 10."""
    if "num_classes" in config:
        return _whole(config["num_classes"], "num_classes")
    classes = config.get("classes", range(10))
    if not isinstance(classes, Sized):
        raise ModelError(f"checkpoint setting 'classes' must be a list, got {classes!r}")
    return len(classes)


def _input_size(config: Mapping[str, object]) -> int:
    """``input_size``, else the preprocessing's ``input_size``, else 48."""
    if "input_size" in config:
        return _whole(config["input_size"], "input_size")
    preprocessing = config.get("preprocessing", {})
    if not isinstance(preprocessing, Mapping):
        raise ModelError(f"checkpoint setting 'preprocessing' must be an object, got {preprocessing!r}")
    return _whole(preprocessing.get("input_size", 48), "preprocessing.input_size")


def build_net(config: Mapping[str, object]) -> nn.Module:
    """Build ``world_vgg`` or ``world_resnet`` from a checkpoint config (missing knobs: defaults)."""
    arch = str(config.get("arch"))
    if arch not in NET_DEFAULTS:
        raise ModelError(f"unknown world architecture {arch!r}; expected one of {', '.join(NET_DEFAULTS)}")
    opts = {k: _whole(config.get(k, default), k) for k, default in NET_DEFAULTS[arch].items()}
    num_classes = _num_classes(config)
    input_size = _input_size(config)
    antialias = bool(config.get("antialias", False))
    if arch == "world_vgg":
        if input_size % 8:
            raise ModelError(f"world_vgg needs an input size divisible by 8, got {input_size}")
        return WorldVGG(num_classes=num_classes, input_size=input_size, width=opts["width"],
                        hidden=opts["hidden"], antialias=antialias, blur_size=opts["blur_size"])
    return WorldResNet(num_classes=num_classes, width=opts["width"], blocks=opts["blocks"],
                       antialias=antialias, blur_size=opts["blur_size"])
