"""``biasprobe demo``: the whole pipeline on the built-in world and the bundled photos.

``run_demo`` is imported on first use, so ``biasprobe.demo.timing`` (read by the demo's
``--help``) imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biasprobe.demo.pipeline import run_demo

__all__ = ["run_demo"]


def __getattr__(name: str) -> Any:
    if name == "run_demo":
        from biasprobe.demo.pipeline import run_demo

        return run_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
