"""The built-in photographer's-bias world: generation, small CNNs and their training.

The names below are imported on first use, so that ``biasprobe.world.config`` and
``biasprobe.world.choices`` stay light for the command line's parsers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biasprobe.world.config import WorldConfig
    from biasprobe.world.generate import WorldInfo, make_world, read_world_info

__all__ = ["WorldConfig", "WorldInfo", "make_world", "read_world_info"]

_HOMES = {"WorldConfig": "biasprobe.world.config", "WorldInfo": "biasprobe.world.generate",
          "make_world": "biasprobe.world.generate", "read_world_info": "biasprobe.world.generate"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'biasprobe.world' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
