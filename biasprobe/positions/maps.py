"""Maps over the frame and their correlations with the training objects' density
(docs/protocols.md sections 8.4-8.6).

``position_maps`` bins a positions table's rows by the object's centre into square cells of
the largest step (in canvas pixels), then per cell: accuracy, mean ``p_true`` and instability,
each a ratio of sums over the rows whose centre falls in the cell. ``TrainingCentres`` holds the
training objects' centres in the model's input frame and their Gaussian kernel density over
(cx, cy). ``density_correlations`` gives Spearman's rho across cells between that density and
accuracy, and between it and instability, each with a bootstrap CI over images.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from biasprobe.analysis.stats import N_BOOTSTRAP, Estimate, bootstrap
from biasprobe.core.errors import InputError
from biasprobe.core.rounding import rnd
from biasprobe.data.boxes import Box

__all__ = [
    "MIN_CELL_IMAGES",
    "PositionMaps",
    "TrainingCentres",
    "density_correlations",
    "input_frame_centres",
    "position_maps",
]

log = logging.getLogger(__name__)

MIN_CELL_IMAGES = 3
"""A cell is on the maps when at least this many images (or all, when fewer) put the object there."""


@dataclass(frozen=True)
class PositionMaps:
    """Per-cell values on a ``cells x cells`` grid over the canvas; NaN where a cell is off the maps.

    Arrays are (down, across). ``per_image`` holds the sums behind them, one row per image (sorted
    by ``image_id``), one column per cell on the maps (``cells_on``: flat indices), so a bootstrap
    over images re-forms the maps without going back to the table.
    """

    canvas: int
    cell: int
    cells: int
    images: np.ndarray
    accuracy: np.ndarray
    p_true: np.ndarray
    instability: np.ndarray
    cells_on: np.ndarray
    per_image: dict[str, np.ndarray]
    n_images: int

    @property
    def centres(self) -> np.ndarray:
        """The normalised canvas coordinate of each cell's centre, along either axis."""
        return (np.arange(self.cells) + 0.5) * self.cell / self.canvas

    def extent(self) -> tuple[int, int, int, int]:
        """The occupied cells' bounding box: first and last column, first and last row."""
        rows, cols = np.nonzero(self.images > 0)
        return int(cols.min()), int(cols.max()), int(rows.min()), int(rows.max())

    @property
    def grid(self) -> tuple[int, int]:
        """Cells across and down in the occupied region."""
        c0, c1, r0, r1 = self.extent()
        return c1 - c0 + 1, r1 - r0 + 1

    def resampled(self, key: str, weights: np.ndarray) -> np.ndarray:
        """One map's values on ``cells_on`` with images weighted (bootstrap counts)."""
        num_key, den_key = _RATIOS[key]
        num = weights @ self.per_image[num_key]
        den = weights @ self.per_image[den_key]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)


_RATIOS = {"accuracy": ("correct", "labelled"), "p_true": ("p_true", "p_true_n"), "instability": ("flips", "pairs")}


def position_maps(table: pd.DataFrame, canvas: int) -> PositionMaps:
    """The maps of one positions table (one model) on a canvas of ``canvas`` pixels."""
    if table.empty:
        raise InputError("the positions table holds no row")
    cell = int(table["step"].max())
    cells = math.ceil(canvas / cell)
    def index(v: pd.Series) -> np.ndarray:
        return np.clip(np.floor(v.to_numpy(dtype=float) * canvas / cell + 1e-9).astype(np.int64), 0, cells - 1)

    flat = index(table["y"]) * cells + index(table["x"])
    ids, image = np.unique(table["image_id"].astype(str).to_numpy(), return_inverse=True)
    correct = table["correct"]
    labelled = correct.notna().to_numpy()
    p_true = table["p_true"].to_numpy(dtype=float)
    sums = {
        "rows": np.ones(len(table)),
        "labelled": labelled.astype(float),
        "correct": correct.fillna(False).to_numpy(dtype=bool).astype(float),
        "p_true": np.nan_to_num(p_true),
        "p_true_n": np.isfinite(p_true).astype(float),
        "flips": table["flips"].to_numpy(dtype=float),
        "pairs": table["pairs"].to_numpy(dtype=float),
    }
    occupied, column = np.unique(flat, return_inverse=True)
    n, k = len(ids), len(occupied)
    per_image = {}
    for key, values in sums.items():
        per_image[key] = np.bincount(image * k + column, weights=values, minlength=n * k).reshape(n, k)
    present = (per_image["rows"] > 0).sum(axis=0)
    on = present >= min(MIN_CELL_IMAGES, n)
    per_image = {key: m[:, on] for key, m in per_image.items()}
    cells_on = occupied[on]
    images = np.zeros(cells * cells)
    images[occupied] = present
    maps = PositionMaps(canvas, cell, cells, images.reshape(cells, cells), np.empty(0), np.empty(0), np.empty(0),
                        cells_on, per_image, n)  # fmt: skip
    ones = np.ones(n)
    values = {}
    for key in _RATIOS:
        full = np.full(cells * cells, np.nan)
        full[cells_on] = maps.resampled(key, ones)
        values[key] = full.reshape(cells, cells)
    return PositionMaps(canvas, cell, cells, maps.images, values["accuracy"], values["p_true"], values["instability"],
                        cells_on, per_image, n)  # fmt: skip


def input_frame_centres(features: np.ndarray, sizes: np.ndarray, *, resize_size: int, canvas: int) -> np.ndarray:
    """Box centres (cx, cy), normalised to their W x H image, moved to the model's input frame:
    the image resized so its shorter side is ``resize_size``, then centre-cropped to ``canvas``
    (the embedding preprocessing, docs/protocols.md section 4.2). (n, 2), normalised to [0, 1]
    inside the crop."""
    out = np.empty((len(features), 2))
    for i, ((cx, cy), (w, h)) in enumerate(zip(np.asarray(features)[:, :2], np.asarray(sizes), strict=True)):
        if w <= h:
            rw, rh = resize_size, rnd(h * resize_size / w)
        else:
            rw, rh = rnd(w * resize_size / h), resize_size
        out[i, 0] = (cx * rw - (rw - canvas) // 2) / canvas
        out[i, 1] = (cy * rh - (rh - canvas) // 2) / canvas
    return out


@dataclass(frozen=True)
class TrainingCentres:
    """The training objects' centres in the model's input frame and their kernel density."""

    centres: np.ndarray
    bandwidth: float
    source: str

    @classmethod
    def from_boxes(cls, boxes: Sequence[Box], *, resize_size: int, canvas: int, bandwidth: float | None,
                   source: str) -> TrainingCentres:
        """From boxes that record their image's size; the bandwidth by the pose stage's CV when not given."""
        features = np.array([b.features() for b in boxes], dtype=float).reshape(-1, 3)
        sizes = np.array([(b.image_width, b.image_height) for b in boxes], dtype=float).reshape(-1, 2)
        return cls.from_features(features, sizes, resize_size=resize_size, canvas=canvas, bandwidth=bandwidth,
                                 source=source)  # fmt: skip

    @classmethod
    def from_features(cls, features: np.ndarray, sizes: np.ndarray, *, resize_size: int, canvas: int,
                      bandwidth: float | None, source: str) -> TrainingCentres:
        from biasprobe.index.pose import PoseDensity

        centres = input_frame_centres(features, sizes, resize_size=resize_size, canvas=canvas)
        if bandwidth is None:
            moved = np.column_stack([centres, np.asarray(features)[:, 2]])
            bandwidth = PoseDensity.fit(moved).bandwidth
        if len(centres) < 5:
            raise InputError(f"the training objects' density needs at least 5 boxes, got {len(centres)}")
        return cls(centres, float(bandwidth), source)

    def kernel_widths(self, cell: float = 0.0) -> np.ndarray:
        """The kernel's standard deviation along x and y (normalised canvas units): the pose stage's
        bandwidth times the centres' population std, and never less than ``cell``."""
        std = self.centres.std(axis=0)
        return np.maximum(self.bandwidth * np.where(std > 0, std, 1.0), cell)

    def density(self, x: np.ndarray, y: np.ndarray, *, cell: float = 0.0) -> np.ndarray:
        """Density of the training centres at (x, y), per unit area of the normalised canvas: the
        pose stage's Gaussian kernel density marginalised over size, each kernel at least ``cell``
        wide (docs/protocols.md section 8.5)."""
        sx, sy = self.kernel_widths(cell)
        px, py = np.ravel(x)[:, None], np.ravel(y)[:, None]
        out = np.zeros(px.shape[0])
        for start in range(0, len(self.centres), 4096):  # bounded memory: (points, 4096) at a time
            cx, cy = self.centres[start : start + 4096, 0], self.centres[start : start + 4096, 1]
            out += np.exp(-0.5 * (((px - cx) / sx) ** 2 + ((py - cy) / sy) ** 2)).sum(axis=1)
        return out / (len(self.centres) * 2 * np.pi * sx * sy)

    def density_map(self, maps: PositionMaps) -> np.ndarray:
        """The density at every cell centre of ``maps`` (down, across), kernels at least one cell wide."""
        c = maps.centres
        xx, yy = np.meshgrid(c, c)
        return self.density(xx, yy, cell=maps.cell / maps.canvas).reshape(maps.cells, maps.cells)


def training_centres_from_index(folder: str | Path, *, resize_size: int, canvas: int) -> TrainingCentres | None:
    """The training boxes of an index folder (``boxes.parquet``, checked against ``meta.json``),
    their image sizes read from the images' headers; None when the index has no boxes."""
    from PIL import Image

    from biasprobe.core.digests import FileDigest, read_verified
    from biasprobe.core.errors import DamagedStateError
    from biasprobe.core.io import parse_table
    from biasprobe.core.records import read_json_object

    folder = Path(folder)
    meta = read_json_object(folder / "meta.json")
    recorded = (meta.get("files") or {}).get("boxes.parquet")
    if recorded is None:
        return None
    data, why = read_verified(folder / "boxes.parquet", FileDigest.from_json(recorded))
    if why is not None or data is None:
        raise DamagedStateError(f"index {folder} is damaged: boxes.parquet {why}; rebuild it with 'biasprobe index build'")
    boxes = parse_table(data, source=str(folder / "boxes.parquet"))
    features, sizes, missing = [], [], 0
    for row in boxes.itertuples(index=False):
        try:
            with Image.open(str(row.file)) as img:
                w, h = img.size
                if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: a quarter turn
                    w, h = h, w
        except OSError:
            missing += 1
            continue
        features.append((row.box_cx, row.box_cy, row.box_log_size))
        sizes.append((w, h))
    if missing:
        log.warning("training density: %d of %d training images of %s could not be opened to read their size; "
                    "their boxes are left out", missing, len(boxes), folder)  # fmt: skip
    bandwidth = (meta.get("boxes") or {}).get("bandwidth")
    return TrainingCentres.from_features(np.array(features, dtype=float).reshape(-1, 3), np.array(sizes, dtype=float),
                                         resize_size=resize_size, canvas=canvas,
                                         bandwidth=float(bandwidth) if bandwidth else None, source=str(folder))  # fmt: skip


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(sps.rankdata(a), sps.rankdata(b))[0, 1])


def density_correlations(maps: PositionMaps, density: np.ndarray, *, seed: int = 0,
                         resamples: int = N_BOOTSTRAP) -> dict[str, Estimate]:
    """Spearman's rho across the cells on the maps between the training density and accuracy, and
    between it and instability; 95% percentile CIs over ``resamples`` resamples of images."""
    d = density.reshape(-1)[maps.cells_on]
    out = {}
    for key in ("accuracy", "instability"):
        values = maps.resampled(key, np.ones(maps.n_images))
        rho = _spearman(d, values)
        if not np.isfinite(rho):
            out[key] = Estimate(float("nan"), float("nan"), float("nan"), int(np.isfinite(values).sum()))
            continue

        def statistic(idx: np.ndarray, key: str = key) -> float:
            weights = np.bincount(idx, minlength=maps.n_images).astype(float)
            return _spearman(d, maps.resampled(key, weights))

        lo, hi = bootstrap(statistic, maps.n_images, resamples=resamples, seed=seed)
        out[key] = Estimate(rho, lo, hi, int(np.isfinite(values).sum()))
    return out
