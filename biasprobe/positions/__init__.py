"""Positions: the object moved over the whole frame, maps of accuracy and instability beside
the training objects' density (``biasprobe positions``, docs/protocols.md section 8).

The maps and figures import no torch (the report reads them); the stage's names
(``measure_positions``, ``run_positions``, ``PositionsResult``) load torch when first used.
"""

from __future__ import annotations

from typing import Any

from biasprobe.positions.maps import PositionMaps, TrainingCentres, position_maps, training_centres_from_index
from biasprobe.positions.summary import PositionsSummary, positions_block

__all__ = ["PositionMaps", "PositionsResult", "PositionsSummary", "TrainingCentres", "measure_positions",
           "parts_dir_for", "position_maps", "positions_block", "run_positions", "training_centres_from_index"]  # fmt: skip

_STAGE = ("PositionsResult", "measure_positions", "parts_dir_for", "run_positions")


def __getattr__(name: str) -> Any:
    if name in _STAGE:
        from biasprobe.positions import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
