"""Result files: atomic writes with ordinary permissions, companions, JSON values."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.io import companion, read_table, write_json, write_table
from biasprobe.core.skipped import Skipped, skipped_frame


def test_companion_names() -> None:
    out = Path("runs/inv.parquet")
    assert companion(out, "views") == Path("runs/inv.views.parquet")
    assert companion(out, "summary") == Path("runs/inv.summary.json")
    assert companion(out, "skipped") == Path("runs/inv.skipped.parquet")


def test_writes_are_atomic_and_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.parquet")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert read_table(path)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # no temporary file left behind


def test_json_values_are_plain(tmp_path: Path) -> None:
    path = write_json({"x": np.float32(0.5), "n": np.int64(3), "nan": float("nan"), "arr": np.arange(2)}, tmp_path / "s.json")
    assert json.loads(path.read_text()) == {"x": 0.5, "n": 3, "nan": None, "arr": [0, 1]}


def test_skipped_frame_keeps_every_reason() -> None:
    frame = skipped_frame([Skipped("a.png", "not an image"), Skipped("<b>.png", "cannot decode")])
    assert frame.to_dict("records") == [{"path": "a.png", "reason": "not an image"}, {"path": "<b>.png", "reason": "cannot decode"}]
