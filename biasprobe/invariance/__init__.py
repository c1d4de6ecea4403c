"""Invariance: protocol views through the model, per-image metrics, dataset figures
(``biasprobe invariance``).

The names below are imported on first use (a module ``__getattr__``), so importing the
torch-free protocol catalogue (``biasprobe.invariance.catalogue``) does not load the stage and
torch with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biasprobe.invariance.parts import parts_dir_for
    from biasprobe.invariance.run import InvarianceResult, measure_invariance, run_invariance, write_result
    from biasprobe.invariance.summary import InvarianceSummary

__all__ = ["InvarianceResult", "InvarianceSummary", "measure_invariance", "parts_dir_for", "run_invariance", "write_result"]

_HOMES = {
    "InvarianceResult": "run", "measure_invariance": "run", "run_invariance": "run", "write_result": "run",
    "InvarianceSummary": "summary", "parts_dir_for": "parts",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
