"""Progress the user can trust: the embed bar counts embedded images, the index build names its phases."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import biasprobe.index.embed as embed
from biasprobe.data.sources import open_source
from biasprobe.world.nets import WORLD_PREPROCESSING


class _Bar:
    def __init__(self, events: list[tuple[str, int]]) -> None:
        self.events = events

    def update(self, n: int) -> None:
        self.events.append(("bar", n))


def test_the_embed_bar_moves_only_when_a_batch_is_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, int]] = []

    def forward(_model: object, _runtime: object, views: list[object]) -> np.ndarray:
        events.append(("forward", len(views)))
        return np.zeros((len(views), 4), np.float32)

    monkeypatch.setattr(embed, "_forward", forward)
    source = open_source("builtin:photos")
    model = SimpleNamespace(preprocessing=WORLD_PREPROCESSING)
    batches = list(embed.iter_embedded(source.records, model, None, batch_size=4, workers=0, progress=_Bar(events)))  # type: ignore[arg-type]
    assert [len(b.records) for b in batches] == [4, 4, 1]
    assert events == [("forward", 4), ("bar", 4), ("forward", 4), ("bar", 4), ("forward", 1), ("bar", 1)]


def test_index_build_names_the_phases_after_embedding(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from biasprobe.cli import main

    with caplog.at_level(logging.INFO):
        assert main(["index", "build", "--images", "builtin:photos", "--model", "efficientnet_lite0", "--threads", "2",
                     "--out", str(tmp_path / "i")]) == 0
    messages = [r.getMessage() for r in caplog.records]
    faiss = next(i for i, m in enumerate(messages) if m.startswith("building FAISS index Flat over 9 x 1280"))
    reference = next(i for i, m in enumerate(messages) if m.startswith("leave-one-out reference: the 8 nearest other"))
    assert faiss < reference
    bars = capsys.readouterr().err
    assert "embed: 100%" in bars and "leave-one-out: 100%" in bars and "| 9/9 [" in bars
