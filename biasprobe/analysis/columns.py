"""Columns of the joined table as numpy arrays: numbers with NaN for missing, and correctness."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["correct_mask", "float_values"]


def float_values(values: pd.Series) -> np.ndarray:
    """Any numeric / nullable column as float64 with NaN for missing."""
    return pd.to_numeric(values, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def correct_mask(frame: pd.DataFrame) -> np.ndarray:
    """Boolean array: ``correct0`` is known and true (False where unknown)."""
    if "correct0" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame["correct0"].astype("boolean").fillna(False).to_numpy(dtype=bool)
