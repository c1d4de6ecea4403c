"""Photographer's bias from object boxes: how unusual is an object's position and size?

Features per image (``boxes.Box.features``): normalised centre (cx, cy) and log relative size
``log(sqrt(w * h / (W * H)))``. They are standardised by the training boxes' mean and
(population) std; the density is scikit-learn's Gaussian ``KernelDensity`` with the bandwidth
chosen by 5-fold ``GridSearchCV`` over 20 log-spaced values in [0.05, 2]. ``pose_atypicality``
is the fraction of training boxes whose in-sample log density is >= the box's (docs/protocols.md
section 4). The fit is stored as the training features plus the chosen bandwidth (no pickle)
and refitted deterministically on load.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from biasprobe.core.errors import InputError
from biasprobe.data.boxes import Box
from biasprobe.index.meta import BoxesInfo

if TYPE_CHECKING:  # scikit-learn is imported when a density is fitted: the rest of the index works without it
    from sklearn.neighbors import KernelDensity

__all__ = ["BANDWIDTHS", "PoseDensity", "box_features"]

log = logging.getLogger(__name__)

BANDWIDTHS = np.logspace(np.log10(0.05), np.log10(2.0), 20)
MIN_BOXES = 5
CV_FOLDS = 5


def box_features(boxes: Sequence[Box | None]) -> np.ndarray:
    """(n, 3) float64 features; rows without a box are NaN."""
    return np.array([b.features() if b is not None else (np.nan,) * 3 for b in boxes], dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class PoseDensity:
    """A fitted box density: training features, standardisation, bandwidth."""

    features: np.ndarray  # (n, 3) training features, unstandardised
    mean: np.ndarray
    std: np.ndarray
    bandwidth: float
    _kde: KernelDensity = field(repr=False, compare=False)
    _train_log_density: np.ndarray = field(repr=False, compare=False)

    @classmethod
    def fit(cls, features: np.ndarray, *, bandwidth: float | None = None) -> PoseDensity:
        """Fit on training features; the bandwidth by 5-fold CV unless given (e.g. on load)."""
        x = np.asarray(features, dtype=np.float64)
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) < MIN_BOXES:
            raise InputError(f"the box density needs at least {MIN_BOXES} training images with boxes, got {len(x)}")
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        z = (x - mean) / std
        from sklearn.model_selection import GridSearchCV, KFold
        from sklearn.neighbors import KernelDensity

        if bandwidth is None:
            search = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": BANDWIDTHS}, cv=KFold(CV_FOLDS))
            search.fit(z)
            bandwidth = float(search.best_params_["bandwidth"])
            log.info("box density bandwidth %.4g (5-fold CV over %d training boxes)", bandwidth, len(z))
        kde = KernelDensity(kernel="gaussian", bandwidth=bandwidth).fit(z)
        return cls(x, mean, std, float(bandwidth), kde, kde.score_samples(z))

    @property
    def count(self) -> int:
        return len(self.features)

    def log_density(self, features: np.ndarray) -> np.ndarray:
        """Log density of (n, 3) features (NaN rows give NaN)."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, 3)
        out = np.full(len(x), np.nan)
        ok = np.isfinite(x).all(axis=1)
        if ok.any():
            out[ok] = self._kde.score_samples((x[ok] - self.mean) / self.std)
        return out

    def pose_atypicality(self, features: np.ndarray) -> np.ndarray:
        """Fraction of training boxes whose in-sample log density is >= each box's (NaN: no box)."""
        dens = self.log_density(features)
        ref = np.sort(self._train_log_density)
        out = (len(ref) - np.searchsorted(ref, dens, side="left")) / len(ref)
        return np.where(np.isfinite(dens), out, np.nan)

    def info(self) -> BoxesInfo:
        """What an index's meta.json records about the fit."""
        return BoxesInfo(self.count, self.bandwidth, tuple(self.mean.tolist()), tuple(self.std.tolist()),
                         (float(BANDWIDTHS[0]), float(BANDWIDTHS[-1]), len(BANDWIDTHS)), cv_folds=CV_FOLDS)
