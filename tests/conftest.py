"""Shared fixtures: the real EfficientNet-Lite0 (built once) and the bundled photos."""

from __future__ import annotations

import pytest

from biasprobe.data.sources import BUILTIN_PHOTOS, ImageSource, open_source
from biasprobe.models import ProbeModel, create_model


@pytest.fixture(scope="session")
def lite0() -> ProbeModel:
    return create_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def photos() -> ImageSource:
    return open_source(BUILTIN_PHOTOS)
