"""Positions: the object moved over the whole frame, maps of accuracy and instability beside
the training objects' density (``biasprobe positions``, docs/protocols.md section 7)."""

from biasprobe.positions.maps import PositionMaps, TrainingCentres, position_maps, training_centres_from_index
from biasprobe.positions.run import PositionsResult, measure_positions, parts_dir_for, run_positions
from biasprobe.positions.summary import PositionsSummary, positions_block

__all__ = ["PositionMaps", "PositionsResult", "PositionsSummary", "TrainingCentres", "measure_positions",
           "parts_dir_for", "position_maps", "positions_block", "run_positions", "training_centres_from_index"]  # fmt: skip
