"""glibc malloc tuning for CPU inference, applied once when biasprobe is imported.

With default glibc settings CPU inference spends most of its time in page faults: large
activations are mmap-ed and unmapped every batch. Raising the mmap and trim thresholds and
the top pad keeps that memory in the heap; one arena keeps the gain in worker threads.
Measured on EfficientNet-Lite0 (2 cores, batch 64): 2-3x more images per second. Set
``BIASPROBE_NO_MALLOC_TUNING=1`` to opt out. Imports nothing heavy, so it can run first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["malloc_tuned", "tune_malloc"]

# glibc mallopt parameters (malloc.h) and the values applied.
_SETTINGS = (
    (-3, 2**31 - 1),  # M_MMAP_THRESHOLD
    (-1, 2**31 - 1),  # M_TRIM_THRESHOLD
    (-2, 1 << 30),  # M_TOP_PAD
    (-8, 1),  # M_ARENA_MAX
)
_state = {"tuned": False}


def tune_malloc() -> bool:
    """Apply the settings; returns whether they took effect (False off glibc or opted out)."""
    if _state["tuned"]:
        return True
    if os.environ.get("BIASPROBE_NO_MALLOC_TUNING") == "1":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _state["tuned"] = all(mallopt(param, value) == 1 for param, value in _SETTINGS)
    return _state["tuned"]


def malloc_tuned() -> bool:
    """Whether the tuning is in effect in this process."""
    return _state["tuned"]
