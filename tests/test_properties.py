"""Properties that hold for every input, checked on random ones (hypothesis): the per-image metrics,
a model that ignores its input, the crop and zhang windows, resuming from any finished units,
and the file digests that guard stored state."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from torch import nn

from biasprobe.core.digests import FileDigest, problem
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.data.sources import open_source
from biasprobe.data.transforms import centre_crop, resize_shorter
from biasprobe.engine.runtime import Runtime
from biasprobe.invariance import measure_invariance
from biasprobe.invariance import work as invariance_work
from biasprobe.invariance.metrics import image_metrics
from biasprobe.invariance.protocols import ProtocolParams, get_protocol, list_protocols, zhang_offsets
from biasprobe.models.spec import ProbeModel

FAST = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=5, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
RUNTIME = Runtime.create(threads=2)
PREP = Preprocessing(16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.875, 3)
PARAMS = ProtocolParams(max_shift=3, embed_size=10, input_size=16, pairs_per_image=2, run_seed=0)


# ---------------------------------------------------------------- per-image metrics
@st.composite
def probability_tables(draw: st.DrawFn) -> tuple[np.ndarray, bool, int | None]:
    paired = draw(st.booleans())
    views = 2 * draw(st.integers(1, 6)) if paired else draw(st.integers(2, 12))
    classes = draw(st.integers(1, 6))
    raw = draw(arrays(np.float64, (views, classes), elements=st.floats(0, 1, allow_nan=False)))
    raw = raw + 1e-9  # no all-zero row
    label = draw(st.none() | st.integers(-1, classes))
    return raw / raw.sum(axis=1, keepdims=True), paired, label


@FAST
@given(probability_tables())
def test_metrics_bounds_hold_for_any_probabilities(table: tuple[np.ndarray, bool, int | None]) -> None:
    probs, paired, label = table
    metrics, cols = image_metrics(probs, paired=paired, label=label)
    views = probs.shape[0]
    assert metrics.pairs == (views // 2 if paired else views - 1)
    assert 0 <= metrics.flips <= metrics.pairs
    assert 0.0 <= metrics.p_change <= 1.0
    assert metrics.consistency == 1.0 - metrics.p_change
    assert 0.0 <= metrics.mac_top1 <= 1.0 and 0.0 <= metrics.prob_range <= 1.0
    assert 1 <= metrics.n_labels <= min(views, probs.shape[1])
    top = probs.argmax(axis=1)
    a = np.arange(0, views, 2) if paired else np.arange(views - 1)
    assert metrics.flips == int((top[a] != top[a + 1]).sum())
    assert list(cols.top1) == list(top)


# ---------------------------------------------------------------- a model that ignores its input
def _constant_model() -> ProbeModel:
    """The same logits for every input: zero convolution weights, a bias, a linear head."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    nn.init.zeros_(conv.weight)
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    return ProbeModel(net, name="constant", preprocessing=PREP, class_names=list("abcde"), weights_sha256=None,
                      weights_source="test")


@st.composite
def image_sets(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(width, height, seed) of one to four images."""
    return draw(st.lists(st.tuples(st.integers(8, 40), st.integers(8, 40), st.integers(0, 2**16)), min_size=1, max_size=4))


def _write_images(folder: Path, specs: list[tuple[int, int, int]]) -> Path:
    for i, (w, h, seed) in enumerate(specs):
        pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"img_{i}.png")
    return folder


@SLOW
@given(image_sets())
def test_a_constant_model_never_flips_under_any_protocol(specs: list[tuple[int, int, int]]) -> None:
    names = [p.name for p in list_protocols()]
    with tempfile.TemporaryDirectory() as tmp:
        source = open_source(_write_images(Path(tmp), specs))
        result = measure_invariance(_constant_model(), source, protocols=names, params=PARAMS, runtime=RUNTIME,
                                    batch_size=7, progress=False, workers=0)
    assert len(result.images) == len(specs) * len(names)
    assert (result.images["flips"] == 0).all() and (result.images["p_change"] == 0).all()
    assert (result.images["consistency"] == 1).all() and (result.images["n_labels"] == 1).all()
    assert result.views["top1"].nunique() == 1


# ---------------------------------------------------------------- the windows of crop and zhang
@st.composite
def window_cases(draw: st.DrawFn) -> tuple[Image.Image, ProtocolParams, str]:
    size = draw(st.integers(8, 24))
    shift = draw(st.integers(1, 6))
    w, h = draw(st.integers(4, 48)), draw(st.integers(4, 48))
    pixels = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (h, w, 3), dtype=np.uint8)
    image_id = draw(st.text("0123456789abcdef", min_size=16, max_size=16))
    params = ProtocolParams(max_shift=shift, embed_size=max(1, size - shift), input_size=size,
                            pairs_per_image=draw(st.integers(1, 4)))
    return Image.fromarray(pixels, "RGB"), params, image_id


def _square(img: Image.Image, params: ProtocolParams) -> torch.Tensor:
    b = params.crop_size
    return torch.from_numpy(np.asarray(centre_crop(resize_shorter(img, b), b), dtype=np.uint8).copy()).permute(2, 0, 1)


@FAST
@given(window_cases())
def test_crop_and_zhang_views_are_exact_windows_of_the_square(case: tuple[Image.Image, ProtocolParams, str]) -> None:
    img, params, image_id = case
    s, m = params.input_size, params.max_shift
    square = _square(img, params)
    assert square.shape == (3, s + m, s + m)
    crop = get_protocol("crop").build(img, image_id, params).pixels
    assert crop.shape == (m + 1, 3, s, s)
    for t in range(m + 1):
        assert torch.equal(crop[t], square[:, t : t + s, t : t + s])
    zhang = get_protocol("zhang").build(img, image_id, params).pixels
    offsets = zhang_offsets(image_id, params)
    assert zhang.shape == (2 * params.pairs_per_image, 3, s, s) and offsets.min() >= 0 and offsets.max() <= m
    for i, (h1, w1, h2, w2) in enumerate(offsets.tolist()):
        assert torch.equal(zhang[2 * i], square[:, h1 : h1 + s, w1 : w1 + s])
        assert torch.equal(zhang[2 * i + 1], square[:, h2 : h2 + s, w2 : w2 + s])


# ---------------------------------------------------------------- resuming from any finished units
def _classifier() -> ProbeModel:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, 5))
    return ProbeModel(net, name="tiny", preprocessing=PREP, class_names=list("abcde"), weights_sha256=None, weights_source="test")


UNITS = 5  # 9 images, 2 per unit


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("resume")
    images = root / "imgs"
    images.mkdir()
    _write_images(images, [(20 + i, 18 + 2 * i, i) for i in range(9)])
    (images / "img_4.png").write_bytes(b"broken")  # a skipped input in unit 2
    parts = root / "parts"
    kwargs = {"protocols": ["crop", "zhang", "scale"], "params": PARAMS, "runtime": RUNTIME, "batch_size": 5,
              "chunk_images": 2, "progress": False, "workers": 0}
    whole = measure_invariance(_classifier(), open_source(images), **kwargs)
    measure_invariance(_classifier(), open_source(images), parts_dir=parts, **kwargs)
    return {"images": images, "parts": parts, "whole": whole, "kwargs": kwargs}


@SLOW
@given(st.sets(st.integers(0, UNITS - 1)), st.booleans())
def test_resuming_from_any_finished_units_equals_an_uninterrupted_run(
    finished_run: dict, monkeypatch: pytest.MonkeyPatch, unfinished: set[int], drop_files: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parts = Path(tmp) / "parts"
        shutil.copytree(finished_run["parts"], parts)
        for unit in unfinished:  # interrupted before the marker (and maybe before the files)
            (parts / "done" / f"{unit:06d}.json").unlink()
            if drop_files:
                for path in parts.glob(f"part_{unit:06d}.*"):
                    path.unlink()
        ran: list[int] = []
        real = invariance_work.write_part
        with monkeypatch.context() as patch:
            patch.setattr(invariance_work, "write_part", lambda f, unit, part: (ran.append(unit), real(f, unit, part)))
            resumed = measure_invariance(_classifier(), open_source(finished_run["images"]), parts_dir=parts,
                                         **finished_run["kwargs"])
    whole = finished_run["whole"]
    assert ran == sorted(unfinished)
    pd.testing.assert_frame_equal(resumed.images, whole.images)
    pd.testing.assert_frame_equal(resumed.views, whole.views)
    assert list(resumed.skipped["path"]) == list(whole.skipped["path"])


# ---------------------------------------------------------------- file digests
@FAST
@given(st.binary(min_size=1, max_size=4096), st.data())
def test_any_changed_byte_or_length_is_caught(data: bytes, draw: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.bin"
        path.write_bytes(data)
        digest = FileDigest.of_file(path)
        assert digest == FileDigest.of_bytes(data) and problem(path, digest) is None
        i = draw.draw(st.integers(0, len(data) - 1))
        flipped = bytearray(data)
        flipped[i] ^= draw.draw(st.integers(1, 255))
        path.write_bytes(bytes(flipped))
        assert problem(path, digest) is not None and problem(path, digest, contents=False) is None
        path.write_bytes(data + b"\0")
        assert "bytes" in (problem(path, digest, contents=False) or "")
