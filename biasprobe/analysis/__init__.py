"""Relating invariance to typicality: bootstrap statistics, deciles, halves, logistic control."""

from biasprobe.analysis.relate import analyse, protocol_figures

__all__ = ["analyse", "protocol_figures"]
