"""Box features, the box density and pose_atypicality on boxes with known answers (docs/protocols.md 4)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _typicality_data import tiny_model, write_noise_images
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity

from biasprobe.core.errors import InputError
from biasprobe.data.boxes import Box, read_boxes
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index.build import build_index
from biasprobe.index.pose import BANDWIDTHS, PoseDensity, box_features
from biasprobe.index.score import score_images


def test_box_features_known_values(tmp_path: Path) -> None:
    whole = Box(0, 0, 200, 100, 200, 100)
    quarter = Box(100, 50, 100, 50, 200, 100)  # bottom-right quarter: area 1/4 -> log(1/2)
    feats = box_features([whole, quarter, None])
    np.testing.assert_allclose(feats[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(feats[1], [0.75, 0.75, math.log(0.5)])
    assert np.isnan(feats[2]).all()
    xml = tmp_path / "a.xml"  # Pascal VOC, 1-based inclusive: w = xmax - xmin + 1
    xml.write_text("<annotation><filename>a.jpg</filename><size><width>100</width><height>100</height></size>"
                   "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax><ymax>50</ymax></bndbox></object></annotation>")
    box = read_boxes(xml).lookup("a.jpg")
    np.testing.assert_allclose(box_features([box])[0], [0.25, 0.25, math.log(0.5)])


def test_density_matches_sklearn_and_closed_form() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal([0.5, 0.5, -1.0], [0.1, 0.05, 0.3], size=(200, 3))
    pose = PoseDensity.fit(train)
    np.testing.assert_allclose(pose.mean, train.mean(axis=0))
    np.testing.assert_allclose(pose.std, train.std(axis=0))
    z = (train - train.mean(axis=0)) / train.std(axis=0)
    search = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": BANDWIDTHS}, cv=KFold(5)).fit(z)
    assert pose.bandwidth == pytest.approx(search.best_params_["bandwidth"])
    assert len(BANDWIDTHS) == 20 and BANDWIDTHS[0] == pytest.approx(0.05) and BANDWIDTHS[-1] == pytest.approx(2.0)
    # the Gaussian KDE in closed form on the standardised features
    q = np.array([[0.5, 0.5, -1.0], [0.9, 0.1, 0.5]])
    zq = (q - pose.mean) / pose.std
    h = pose.bandwidth
    sq = ((zq[:, None, :] - z[None]) ** 2).sum(-1)
    closed = np.log(np.exp(-sq / (2 * h * h)).mean(axis=1)) - 1.5 * np.log(2 * np.pi * h * h)
    np.testing.assert_allclose(pose.log_density(q), closed, rtol=1e-6)


def test_pose_atypicality_known_answers() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, size=(300, 3))
    pose = PoseDensity.fit(train, bandwidth=0.5)
    own = pose.log_density(train)
    atyp = pose.pose_atypicality(np.vstack([train, [[0, 0, 0], [8, 8, 8], [np.nan] * 3]]))
    expected = (own[None, :] >= own[:, None]).mean(axis=1)  # fraction with density >= each box's
    np.testing.assert_allclose(atyp[:300], expected)
    assert atyp[300] < 0.05 and atyp[301] == 1.0 and np.isnan(atyp[302])
    assert atyp[:300].min() == pytest.approx(1 / 300)  # the densest training box
    refit = PoseDensity.fit(train, bandwidth=pose.bandwidth)  # what loading does: deterministic
    np.testing.assert_array_equal(refit.pose_atypicality(train), atyp[:300])
    with pytest.raises(InputError, match="at least 5 training images with boxes, got 4"):
        PoseDensity.fit(train[:4])


def test_boxes_through_index_and_score(tmp_path: Path) -> None:
    folder = write_noise_images(tmp_path / "imgs", 30)
    rng = np.random.default_rng(2)
    rows = []
    for i in range(30):  # objects in the middle of the frame, about half its size
        w, h = 40 + i % 7, 40
        cx, cy = 0.5 + rng.normal(0, 0.05), 0.5 + rng.normal(0, 0.05)
        bw, bh = 0.5 * w, 0.5 * h
        rows.append((f"img_{i:04d}.png", cx * w - bw / 2, cy * h - bh / 2, cx * w + bw / 2, cy * h + bh / 2, w, h))
    boxes = pd.DataFrame(rows, columns=["path", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height"])
    boxes.to_csv(tmp_path / "boxes.csv", index=False)
    test_boxes = boxes.iloc[:2].copy()
    test_boxes.loc[1, ["xmin", "ymin", "xmax", "ymax"]] = [0, 0, 4, 4]  # a tiny object in the corner
    test_boxes.to_csv(tmp_path / "test_boxes.csv", index=False)
    runtime = Runtime.create(threads=2)
    model = tiny_model()
    index = build_index(open_source(folder, boxes=tmp_path / "boxes.csv"), model, tmp_path / "idx", runtime=runtime,
                        show_progress=False, workers=0)
    assert index.pose is not None and index.meta.boxes is not None and index.meta.boxes.count == 30
    stored = pd.read_parquet(tmp_path / "idx" / "boxes.parquet")
    assert len(stored) == 30 and {"image_id", "path", "box_cx", "box_cy", "box_log_size"} <= set(stored.columns)
    expected = PoseDensity.fit(stored[["box_cx", "box_cy", "box_log_size"]].to_numpy())
    assert index.pose.bandwidth == expected.bandwidth
    result = score_images(index, open_source(folder, limit=2), model, k=3, boxes=tmp_path / "test_boxes.csv",
                          runtime=runtime, show_progress=False, workers=0)
    frame = result.frame
    assert {"box_cx", "box_cy", "box_log_size", "pose_atypicality"} <= set(frame.columns)
    assert frame["pose_atypicality"].iloc[1] == 1.0 and frame["pose_atypicality"].iloc[0] < 1.0
    np.testing.assert_allclose(frame["pose_atypicality"].iloc[0], index.pose.pose_atypicality(stored.iloc[:1][["box_cx", "box_cy", "box_log_size"]].to_numpy())[0])
    plain = score_images(index, open_source(folder, limit=2), model, k=3, runtime=runtime, show_progress=False, workers=0)
    assert "pose_atypicality" not in plain.frame.columns  # no boxes for the scored side
