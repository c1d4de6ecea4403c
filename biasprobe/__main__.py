"""``python -m biasprobe``."""

from biasprobe.cli import entry

entry()
