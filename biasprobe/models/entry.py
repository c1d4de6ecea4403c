"""A registry entry: a name users can type, what it is, and where its builder lives.

Torch-free, so that ``biasprobe models`` and the parsers can list entries without importing
torch or timm: the builder is named as ``"module:function"`` and imported when a model is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from biasprobe.core.preprocessing import Preprocessing

if TYPE_CHECKING:
    from collections.abc import Callable

    from biasprobe.models.spec import ProbeModel

__all__ = ["ModelEntry"]


@dataclass(frozen=True)
class ModelEntry:
    """A name users can type, what it is, and how to build it."""

    name: str
    description: str
    weights_source: str
    preprocessing: Preprocessing | None
    builder: str
    """``"package.module:function"`` taking ``(name, weights_path_or_None)`` and returning a ProbeModel."""

    def build(self, name: str, weights: Path | None) -> ProbeModel:
        """Import the builder and build the model ``name`` (an entry's own name or a namespaced one)."""
        module, _, function = self.builder.partition(":")
        builder = cast("Callable[[str, Path | None], ProbeModel]", getattr(importlib.import_module(module), function))
        return builder(name, weights)
