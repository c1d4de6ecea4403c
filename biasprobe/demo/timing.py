"""How long the demo takes, measured, with the conditions of each figure: one source for
``biasprobe demo --help`` and the README (tests/test_demo.py checks the README quotes these).

Measured on a 2-core machine without a GPU (summary.json's ``seconds``): ``--quick`` 130 s
with nothing else running (load average 1.5-1.7, the demo itself) and 172 s with the load
average at 2-4 (another job sharing the cores); the full demo 8 minutes on a quieter machine,
11 minutes (645 s) with another job sharing the cores, and 29 and 67 minutes while several
other heavy jobs ran on the same two cores.

Importing this module imports nothing heavy, so the demo's parser stays cheap.
"""

from __future__ import annotations

__all__ = ["CONDITIONS", "FULL_DEMO", "QUICK_DEMO", "UNDER_LOAD"]

CONDITIONS = "on 2 CPU cores without a GPU"
FULL_DEMO = "8 to 11 minutes"
QUICK_DEMO = "2 to 3 minutes"
UNDER_LOAD = "several times longer when other heavy jobs share the cores (29 and 67 minutes measured for the full demo)"
