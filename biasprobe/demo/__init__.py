"""``biasprobe demo``: the whole pipeline on the built-in world and the bundled photos."""

from biasprobe.demo.pipeline import run_demo

__all__ = ["run_demo"]
