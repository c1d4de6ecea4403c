"""How long the demo takes, measured, with the conditions of each figure: one source for
``biasprobe demo --help`` and the README (tests/test_demo.py checks the README quotes these).

Since the demo also compares EfficientNet-Lite0, Lite1 and Lite2 on the labelled photos (three
steps, ``crop`` and ``zhang`` only: 22 steps quick, 36 full): ``--quick`` 206 s on 2 cores with
nothing else running (load average about 1; the three steps 4, 6 and 9 s); the full demo was not
re-timed (its three comparison steps add well under a minute). Measured on a 2-core machine without a GPU (summary.json's ``seconds``), since the
demo also runs the layers and positions steps (19 steps quick, 33 full): ``--quick`` 175 s with nothing
else running (load average 1.6-1.7, the demo itself), the full demo 689 s (positions 89 s and
layers 58 s of it) with a minute of tests beside it. Before those steps: ``--quick`` 130 s idle
and 172 s with another job; the full demo 8 minutes on a quieter machine, 11 minutes with
another job, and 29 and 67 minutes while several other heavy jobs ran on the same two cores;
the quick demo took 710 s while four other jobs loaded the cores (load average about 6).

Importing this module imports nothing heavy, so the demo's parser stays cheap.
"""

from __future__ import annotations

__all__ = ["CONDITIONS", "FULL_DEMO", "QUICK_DEMO", "UNDER_LOAD"]

CONDITIONS = "on 2 CPU cores without a GPU"
FULL_DEMO = "about 12 minutes"
QUICK_DEMO = "3-4 minutes"
UNDER_LOAD = "several times longer when other heavy jobs share the cores (29 and 67 minutes measured for the full demo)"
