"""A registry of model names to builders: ``create_model(name)`` and ``list_models()``.

Exact names (``efficientnet_lite0``, ``world_vgg``) are entries; namespaced names
(``tv:resnet50``, ``timm:resnet50``, ``py:package.module:factory``) are resolved by a family registered for the prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from biasprobe.core.errors import ModelError
from biasprobe.models.entry import ModelEntry

if TYPE_CHECKING:
    from biasprobe.models.spec import ProbeModel

__all__ = ["create_model", "get_entry", "list_models", "register", "register_family"]

_ENTRIES: dict[str, ModelEntry] = {}
_FAMILIES: dict[str, ModelEntry] = {}
_BUILT_IN_LOADED: list[bool] = []  # non-empty once the built-in entries are registered


def register(entry: ModelEntry) -> ModelEntry:
    """Add an exact-name model."""
    if entry.name in _ENTRIES:
        raise ValueError(f"model {entry.name!r} registered twice")
    _ENTRIES[entry.name] = entry
    return entry


def register_family(prefix: str, entry: ModelEntry) -> ModelEntry:
    """Add a namespace such as ``tv`` whose names look like ``tv:ARCH``."""
    _FAMILIES[prefix] = entry
    return entry


def get_entry(name: str) -> ModelEntry:
    """The entry for ``name``, or a ModelError listing what exists."""
    _ensure_loaded()
    if name in _ENTRIES:
        return _ENTRIES[name]
    prefix, sep, _arch = name.partition(":")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix]
    known = ", ".join(sorted(_ENTRIES)) + ", " + ", ".join(f"{p}:ARCH" for p in sorted(_FAMILIES))
    raise ModelError(f"unknown model {name!r}; known: {known} (see 'biasprobe models')")


def create_model(name: str, *, weights: str | Path | None = None) -> ProbeModel:
    """Build a model by name, in eval mode on the CPU, never downloading anything."""
    entry = get_entry(name)
    weights_path = Path(weights) if weights is not None else None
    if weights_path is not None and not weights_path.is_file():
        raise ModelError(f"weights file not found: {weights_path}")
    model = entry.build(name, weights_path)
    return model.eval()


def list_models() -> list[ModelEntry]:
    """Every exact-name model and every namespace, in a stable order."""
    _ensure_loaded()
    return [*sorted(_ENTRIES.values(), key=lambda e: e.name), *_FAMILIES.values()]


def _ensure_loaded() -> None:
    """Register the built-in entries on first use (imported lazily, to keep start-up fast)."""
    if _BUILT_IN_LOADED:
        return
    from biasprobe.models.catalogue import ENTRIES, FAMILIES

    _BUILT_IN_LOADED.append(True)
    for entry in ENTRIES:
        register(entry)
    for prefix, family in FAMILIES.items():
        register_family(prefix, family)
