"""The index stage's tables in the columns and dtypes of ``core.schemas``.

``SCORES_TABLE`` gains the box features and ``pose_atypicality`` when the scored images
have boxes and the index a box density (``SCORES_WITH_BOXES``).
"""

from __future__ import annotations

import pandas as pd

from biasprobe.core.schemas import BOX_FEATURES, SCORES_TABLE, Schema, conform

__all__ = ["SCORES_WITH_BOXES", "conform_table"]

SCORES_WITH_BOXES: Schema = {**SCORES_TABLE, **dict.fromkeys(BOX_FEATURES, "float64"), "pose_atypicality": "float64"}


def conform_table(frame: pd.DataFrame, schema: Schema, *, what: str) -> pd.DataFrame:
    """``core.schemas.conform``, with a text column ("string") in pandas' default ``str`` dtype.

    ``str`` is the dtype these tables were always written with (``StringDtype(na_value=nan)``
    under pandas 3, object under pandas 2); pandas' "string" is the ``pd.NA`` variant, which
    reads back as another dtype. Once ``core.schemas`` says "str", this is ``conform``.
    """
    return conform(frame, {column: "str" if dtype == "string" else dtype for column, dtype in schema.items()}, what=what)
