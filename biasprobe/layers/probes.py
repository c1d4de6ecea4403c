"""Probe points: where in a network the spatial resolution changes (docs/protocols.md section 7.1).

One forward pass with a hook on every module records each call whose output is a feature map
``(N, C, H, W)``. A call's cumulative stride is ``rnd(S / H)`` (S the input size); the probe
points are the last call at each stride (a map of 1 x 1 is global pooling, not a resolution),
in the order they run, then the model's embedding (section 4.2). ``ProbeCapture`` hooks those
calls during measurement and keeps each one's spatial mean, so nothing of the maps is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.core.rounding import rnd
from biasprobe.models.spec import ProbeModel

__all__ = ["EMBEDDING", "ProbeCapture", "ProbePoint", "find_probe_points", "model_probes", "total_stride"]

EMBEDDING = "embedding"
"""The ``probe`` name of the embedding of docs/protocols.md section 4.2."""


@dataclass(frozen=True)
class ProbePoint:
    """One place in the network where the representation is read."""

    name: str
    """The module's path in the network (``features.5``), or ``embedding``."""
    call: int
    """Which call of that module in one forward pass (0 unless a module is reused)."""
    depth: int
    """The probe's rank from the input (0) to the embedding (last)."""
    stride: int
    """Cumulative stride ``rnd(S / H)``; the embedding has the network's total stride."""
    channels: int
    """Feature channels (the embedding's length for the embedding)."""
    size: int
    """The feature map's height H (0 for the embedding)."""

    @property
    def is_embedding(self) -> bool:
        return self.name == EMBEDDING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Call:
    name: str
    call: int
    channels: int
    height: int
    width: int


def _record_calls(net: nn.Module, x: torch.Tensor) -> list[_Call]:
    """Every module call of one forward pass whose output is a 4-d tensor, in the order they end."""
    calls: list[_Call] = []
    counts: dict[str, int] = {}
    handles = []

    def hook_for(name: str) -> Any:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            k = counts.get(name, 0)
            counts[name] = k + 1
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                calls.append(_Call(name, k, int(output.shape[1]), int(output.shape[2]), int(output.shape[3])))

        return hook

    for name, module in net.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook_for(name)))
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def find_probe_points(net: nn.Module, input_size: int) -> list[ProbePoint]:
    """The feature probe points of any ``nn.Module`` taking ``(N, 3, S, S)`` images.

    The last call at each cumulative stride, in the order they run; maps of 1 x 1 are left out.
    """
    param = next(iter(net.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, input_size, input_size, generator=generator).to(device)
    last: dict[int, _Call] = {}
    order: dict[int, int] = {}
    for i, call in enumerate(_record_calls(net, x)):
        if call.height * call.width <= 1:
            continue
        stride = max(1, rnd(input_size / call.height))
        last[stride] = call
        order[stride] = i
    strides = sorted(last, key=lambda s: order[s])
    return [ProbePoint(last[s].name, last[s].call, depth, s, last[s].channels, last[s].height)
            for depth, s in enumerate(strides)]  # fmt: skip


def total_stride(probes: list[ProbePoint] | tuple[ProbePoint, ...]) -> int:
    """The network's total stride: the largest stride of its feature probes (1 without any)."""
    return max((p.stride for p in probes if not p.is_embedding), default=1)


def model_probes(model: ProbeModel) -> tuple[ProbePoint, ...]:
    """The feature probe points of ``model.net`` followed by its embedding."""
    size = model.preprocessing.input_size
    features = find_probe_points(model.net, size)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.inference_mode():
        _logits, embedding = model(torch.zeros(1, 3, size, size, device=device))
    emb = ProbePoint(EMBEDDING, 0, len(features), total_stride(features), int(embedding.shape[1]), 0)
    return (*features, emb)


class ProbeCapture:
    """Hooks that keep the spatial mean of each feature probe's output during a forward pass.

    ``with capture.attached():`` registers the hooks; after each forward, ``take()`` returns the
    means in probe order, each float32 ``(N, C)``, and forgets them.
    """

    def __init__(self, model: ProbeModel, probes: tuple[ProbePoint, ...]) -> None:
        self.model = model
        self.features = [p for p in probes if not p.is_embedding]
        modules = dict(model.net.named_modules())
        missing = [p.name for p in self.features if p.name not in modules]
        if missing:
            raise ModelError(f"{model.name} has no module {missing[0]!r} to probe")
        self._modules = modules
        self._counts: dict[str, int] = {}
        self._means: dict[int, torch.Tensor] = {}

    @contextmanager
    def attached(self) -> Iterator[ProbeCapture]:
        handles = [self.model.net.register_forward_pre_hook(self._reset)]
        wanted: dict[str, dict[int, int]] = {}
        for i, probe in enumerate(self.features):
            wanted.setdefault(probe.name, {})[probe.call] = i
        for name, calls in wanted.items():
            handles.append(self._modules[name].register_forward_hook(self._hook(name, calls)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _reset(self, _module: nn.Module, _inputs: object) -> None:
        self._counts = {}

    def _hook(self, name: str, calls: dict[int, int]) -> Any:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            k = self._counts.get(name, 0)
            self._counts[name] = k + 1
            if k in calls:
                self._means[calls[k]] = output.detach().float().mean(dim=(2, 3))

        return hook

    def take(self) -> list[torch.Tensor]:
        """The feature probes' spatial means of the last forward pass, in probe order."""
        if len(self._means) != len(self.features):
            missing = [p.name for i, p in enumerate(self.features) if i not in self._means]
            raise ModelError(f"{self.model.name}: probe {missing[0]!r} was not reached by the forward pass")
        means, self._means = [self._means[i] for i in range(len(self.features))], {}
        return means
