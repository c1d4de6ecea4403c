"""Models: a registry of names, each carrying its preprocessing and giving logits + embedding.

The names below are imported on first use: the registry and its entries are torch-free
(``biasprobe models`` lists them without loading torch); a model's classes load torch when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biasprobe.core.preprocessing import Preprocessing
    from biasprobe.models.entry import ModelEntry
    from biasprobe.models.factory import ModelFactory
    from biasprobe.models.python import from_module
    from biasprobe.models.registry import create_model, get_entry, list_models
    from biasprobe.models.spec import ProbeModel

__all__ = ["ModelEntry", "ModelFactory", "Preprocessing", "ProbeModel", "create_model", "from_module", "get_entry", "list_models"]

_HOMES = {
    "Preprocessing": "biasprobe.core.preprocessing",
    "ModelEntry": "biasprobe.models.entry",
    "ModelFactory": "biasprobe.models.factory",
    "from_module": "biasprobe.models.python",
    "create_model": "biasprobe.models.registry",
    "get_entry": "biasprobe.models.registry",
    "list_models": "biasprobe.models.registry",
    "ProbeModel": "biasprobe.models.spec",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'biasprobe.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
