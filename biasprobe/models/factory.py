"""A model named by plain values (registry name, weights file), so it can be rebuilt anywhere:
by a command from its flags or from what an index recorded, or by a remote worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from biasprobe.core.errors import ModelError
from biasprobe.models.registry import create_model, get_entry
from biasprobe.models.spec import ProbeModel

__all__ = ["ModelFactory"]


@dataclass(frozen=True)
class ModelFactory:
    """How to build one model: ``create_model(name, weights=weights)``.

    Frozen and picklable (plain values), so a runner can ship it to a worker that
    builds its own copy. ``weights`` None means the entry's default weights (the bundled
    EfficientNet-Lite0, a torch or timm cache), or an error for models that need a file.
    ``weights_sha256``, when given, is what the built model's weights must hash to.
    """

    name: str
    weights: str | Path | None = None
    weights_sha256: str | None = None

    def build(self) -> ProbeModel:
        """The model, in eval mode on the CPU; nothing is downloaded."""
        model = create_model(self.name, weights=self.weights)
        if self.weights_sha256 is not None and model.weights_sha256 != self.weights_sha256:
            raise ModelError(
                f"{self.name} built here from {model.weights_source} has weights sha256 {model.weights_sha256}, "
                f"not {self.weights_sha256}: every machine needs the same weights file at the same path"
            )
        return model

    @classmethod
    def of(cls, model: ProbeModel) -> ModelFactory:
        """How to build ``model`` again elsewhere (a worker): its registry name, its weights file
        when it came from one, and its weights' SHA-256, checked when built."""
        try:
            get_entry(model.name)
        except ModelError as exc:
            raise ModelError(f"model {model.name!r} cannot be built again elsewhere: {exc}") from exc
        source = Path(model.weights_source)
        weights = source.resolve() if source.is_file() else None
        return cls(model.name, weights, model.weights_sha256)

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
