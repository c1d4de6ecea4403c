"""What travels with a model: its preprocessing, its class names, and one forward pass that
returns logits and the embedding of docs/protocols.md section 4."""

from __future__ import annotations

import torch
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.core.preprocessing import Preprocessing

__all__ = ["ProbeModel", "find_head", "last_linear"]


def last_linear(net: nn.Module) -> tuple[str, nn.Linear]:
    """The classifier's last linear layer (its input is the embedding)."""
    found = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError("the network has no nn.Linear classifier")
    return found[-1]


def find_head(net: nn.Module, layer: str | None = None) -> tuple[str, nn.Module]:
    """The module whose input is the embedding: ``layer`` when named, else the last
    ``nn.Linear``, else the last 1x1 ``nn.Conv2d`` (a SqueezeNet-style convolutional head)."""
    if layer is not None:
        modules = dict(net.named_modules())
        if not layer or layer not in modules:
            raise ModelError(f"the network has no module {layer!r} to take the embedding from (its input)")
        return layer, modules[layer]
    found: list[tuple[str, nn.Module]] = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        found = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    if not found:
        raise ModelError("the network has no nn.Linear or 1x1 nn.Conv2d classifier; name the layer whose input "
                         "is the embedding (embedding_layer)")  # fmt: skip
    return found[-1]


class ProbeModel(nn.Module):
    """A classifier wrapped so one forward pass gives ``(logits, embedding)``.

    The embedding is the input of the head (``find_head``: the last linear layer, else the
    last 1x1 convolution, or the module named by ``embedding_layer``), L2-normalised, captured
    with a forward pre-hook; a feature-map input is averaged over space first, a flat one is
    flattened.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        preprocessing: Preprocessing,
        class_names: list[str],
        weights_sha256: str | None,
        weights_source: str,
        config: dict[str, object] | None = None,
        embedding_layer: str | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.preprocessing = preprocessing
        self.class_names = class_names
        self.weights_sha256 = weights_sha256
        self.weights_source = weights_source
        self.config = dict(config or {})
        self.embedding_layer, classifier = find_head(net, embedding_layer)
        self._flat_head = isinstance(classifier, nn.Linear)
        self._captured: torch.Tensor | None = None
        classifier.register_forward_pre_hook(self._capture)

    def _capture(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._captured = inputs[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        features = self._captured
        self._captured = None
        if features is None:  # pragma: no cover - every registered net ends in its linear layer
            raise RuntimeError(f"{self.name}: the classifier's linear layer was not called")
        features = (features.mean(dim=(2, 3)) if features.dim() == 4 else features.flatten(1)).float()
        return logits, nn.functional.normalize(features, dim=1)

    def embedding_dim(self) -> int:
        """The embedding's length: the head's input width, else measured with one forward pass."""
        head = dict(self.net.named_modules())[self.embedding_layer]
        width = getattr(head, "in_features", None) if self._flat_head else getattr(head, "in_channels", None)
        if isinstance(width, int):
            return width
        size = self.preprocessing.input_size
        param = next(iter(self.parameters()), None)
        with torch.inference_mode():
            _logits, embedding = self(torch.zeros(1, 3, size, size, device=param.device if param is not None else None))
        return int(embedding.shape[1])

    def describe(self) -> dict[str, object]:
        """What an index's meta.json and a report's provenance record about the model."""
        return {
            "model": self.name,
            "weights_sha256": self.weights_sha256,
            "weights_source": self.weights_source,
            "layer": f"input of {self.embedding_layer} (L2-normalised)" if self._flat_head
            else f"input of {self.embedding_layer}, averaged over space when a feature map (L2-normalised)",
            "preprocessing": self.preprocessing.to_dict(),
            "num_classes": self.num_classes,
            "config": self.config,
        }
