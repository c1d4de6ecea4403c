"""What ``--device``, ``--precision`` and ``--engine`` accept, importable without torch (the command line's
parsers read them before any command runs; ``engine.runtime`` uses them)."""

from __future__ import annotations

__all__ = ["DEVICES", "ENGINES", "PRECISIONS"]

DEVICES = ("auto", "cpu", "cuda")
"""What ``--device`` accepts: ``auto`` is CUDA when present, else the CPU."""

PRECISIONS = ("fp32", "bf16")
"""What ``--precision`` accepts: ``bf16`` autocasts the forward pass (a screening mode)."""

ENGINES = ("local", "ray")
"""What ``--engine`` accepts: ``local`` runs the units in this process, ``ray`` on Ray workers."""
