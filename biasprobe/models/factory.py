"""A model named by plain values (registry name, weights file), so it can be rebuilt anywhere:
by a command from its flags or from what an index recorded, or by a remote worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from biasprobe.models.registry import create_model
from biasprobe.models.spec import ProbeModel

__all__ = ["ModelFactory"]


@dataclass(frozen=True)
class ModelFactory:
    """How to build one model: ``create_model(name, weights=weights)``.

    Frozen and picklable (two plain values), so a runner can ship it to a worker that
    builds its own copy. ``weights`` None means the entry's default weights (the bundled
    EfficientNet-Lite0, a torch or timm cache), or an error for models that need a file.
    """

    name: str
    weights: str | Path | None = None

    def build(self) -> ProbeModel:
        """The model, in eval mode on the CPU; nothing is downloaded."""
        return create_model(self.name, weights=self.weights)

    @classmethod
    def for_recorded(
        cls,
        name: str,
        weights_source: str | None,
        *,
        model: str | None = None,
        weights: str | Path | None = None,
    ) -> ModelFactory:
        """The model to rebuild for an output (an index) that recorded ``name`` and ``weights_source``.

        The user's ``model`` and ``weights`` win. With neither, the recorded name is used with
        the recorded weights file when it is still on disk, else with the entry's default
        weights (a weights source that is no file, e.g. "local timm cache", or a file that
        has moved). Whether the rebuilt model matches the recorded one (weights sha256,
        preprocessing) is for the caller to check.
        """
        if weights is None and model is None and weights_source and Path(weights_source).is_file():
            weights = weights_source
        return cls(model or name, weights)
