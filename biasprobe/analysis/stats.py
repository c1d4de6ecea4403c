"""Resampling statistics of docs/protocols.md section 5: bootstrap percentile CIs over images
(1,000 resamples), permutation p-values (1,000 permutations), seed 0 unless given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "N_BOOTSTRAP",
    "N_PERMUTATIONS",
    "Estimate",
    "bootstrap",
    "bootstrap_rows",
    "mean_estimate",
    "ratio_estimate",
    "spearman_estimate",
]

N_BOOTSTRAP = 1000
N_PERMUTATIONS = 1000


@dataclass(frozen=True)
class Estimate:
    """A figure with its percentile 95% CI (and a p-value where one was computed)."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float | None = None

    @property
    def ci(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"value": self.value, "ci": [self.ci_low, self.ci_high], "n": self.n}
        if self.p_value is not None:
            out["p_value"] = self.p_value
        return out


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    resamples: int = N_BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile 95% CI of ``statistic(indices)`` over ``resamples`` resamples of n images."""
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(resamples)], dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return (float(lo), float(hi))


def bootstrap_rows(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int = N_BOOTSTRAP,
    seed: int = 0,
    max_elements: int = 4_000_000,
) -> tuple[float, float]:
    """``bootstrap`` vectorised: ``statistic`` maps a (rows, n) matrix of resampled indices to
    (rows,) values. The draws are the same random stream as ``bootstrap``, so the CI is too."""
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, max_elements // n))
    parts = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        parts.append(np.asarray(statistic(rng.integers(0, n, size=(rows, n))), dtype=float))
    values = np.concatenate(parts)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return (float(lo), float(hi))


def _rho_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of a with the same row of b (of ranks: Spearman)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=-1) / denom, np.nan)


def _resample_ranks(codes: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``rankdata(values[idx], axis=1)`` (ties averaged) by counting instead of sorting.

    ``codes`` are the dense ranks of the values (``np.unique(values, return_inverse=True)``):
    an element's rank is the number of smaller ones plus (its number of equals + 1) / 2.
    """
    rows, groups = idx.shape[0], int(codes.max()) + 1
    g = codes[idx]
    flat = (g + (np.arange(rows) * groups)[:, None]).ravel()
    counts = np.bincount(flat, minlength=rows * groups).reshape(rows, groups)
    average = (np.cumsum(counts, axis=1) - counts) + (counts + 1) / 2.0
    return np.take_along_axis(average, g, axis=1)


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray, *, seed: int = 0) -> Estimate:
    """sum(numerator) / sum(denominator) with images resampled (e.g. sum(flips) / sum(pairs))."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.size == 0 or den.sum() == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), int(num.size))
    value = float(num.sum() / den.sum())

    def stat(idx: np.ndarray) -> np.ndarray:
        d = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, num[idx].sum(axis=1) / d, np.nan)

    lo, hi = bootstrap_rows(stat, num.size, seed=seed)
    return Estimate(value, lo, hi, int(num.size))


def mean_estimate(values: np.ndarray, *, seed: int = 0) -> Estimate:
    """Mean over images with a bootstrap CI (NaNs dropped first)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    lo, hi = bootstrap_rows(lambda idx: v[idx].mean(axis=1), v.size, seed=seed)
    return Estimate(float(v.mean()), lo, hi, int(v.size))


def spearman_estimate(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> Estimate:
    """Spearman rho with a bootstrap CI and a two-sided permutation p-value."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    from scipy import stats as sps  # here: the invariance stage needs no scipy (0.5-1 s to import)

    rx, ry = sps.rankdata(x), sps.rankdata(y)

    def rho_of(a: np.ndarray, b: np.ndarray) -> float:
        a = a - a.mean()
        b = b - b.mean()
        denom = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / denom) if denom > 0 else float("nan")

    rho = rho_of(rx, ry)
    x_codes, y_codes = np.unique(x, return_inverse=True)[1], np.unique(y, return_inverse=True)[1]
    lo, hi = bootstrap_rows(
        lambda idx: _rho_rows(_resample_ranks(x_codes, idx), _resample_ranks(y_codes, idx)), n, seed=seed
    )
    rng = np.random.default_rng(seed)
    perms = np.array([rho_of(rx, rng.permutation(ry)) for _ in range(N_PERMUTATIONS)])
    p_value = float((1 + np.sum(np.abs(perms) >= abs(rho) - 1e-12)) / (N_PERMUTATIONS + 1))
    return Estimate(rho, lo, hi, n, p_value)
