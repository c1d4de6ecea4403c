"""Invariance: protocol views through the model, per-image metrics, dataset figures
(``biasprobe invariance``)."""

from biasprobe.invariance.run import InvarianceResult, measure_invariance, run_invariance

__all__ = ["InvarianceResult", "measure_invariance", "run_invariance"]
