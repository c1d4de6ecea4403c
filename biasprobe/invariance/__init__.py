"""Invariance: protocol views through the model, per-image metrics, dataset figures
(``biasprobe invariance``)."""

from biasprobe.invariance.parts import parts_dir_for
from biasprobe.invariance.run import InvarianceResult, measure_invariance, run_invariance, write_result
from biasprobe.invariance.summary import InvarianceSummary

__all__ = ["InvarianceResult", "InvarianceSummary", "measure_invariance", "parts_dir_for", "run_invariance", "write_result"]
