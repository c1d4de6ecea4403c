"""Per-image metrics of docs/protocols.md section 3, from the per-view class probabilities.

Sequence protocols compare adjacent views (t, t + 1) for t in 0..T-1; ``zhang`` compares
the two views of each pair (2i, 2i + 1). The probability compared in ``mac_top1`` is that of
the first view's top-1 class; in ``mac_true`` that of the true label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ImageMetrics", "ViewColumns", "image_metrics", "pair_indices"]

NAN = float("nan")


@dataclass(frozen=True)
class ImageMetrics:
    """The per-image row of the invariance table (docs/protocols.md section 3)."""

    pairs: int
    flips: int
    p_change: float
    consistency: float
    mac_top1: float
    mac_true: float
    prob_range: float
    n_labels: int
    correct0: bool | None
    frac_correct: float
    top0: int
    p_top0: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ViewColumns:
    """Per-view results: top-1 class, probability of the reference class and of the label."""

    top1: np.ndarray
    p_k0: np.ndarray
    p_true: np.ndarray


def pair_indices(n_views: int, *, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices (a, b) of the compared views: adjacent views, or (2i, 2i + 1) for pairs."""
    if paired:
        if n_views % 2:
            raise ValueError(f"paired views come in twos, got {n_views}")
        a = np.arange(0, n_views, 2)
        return a, a + 1
    a = np.arange(n_views - 1)
    return a, a + 1


def image_metrics(
    probs: np.ndarray, *, paired: bool = False, label: int | None = None
) -> tuple[ImageMetrics, ViewColumns]:
    """Metrics of one image under one protocol from its (V, C) softmax probabilities.

    A label outside ``0..C-1`` counts as known but never predicted (probability NaN).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise ValueError(f"expected (views >= 2, classes) probabilities, got shape {p.shape}")
    views, classes = p.shape
    top = p.argmax(axis=1)
    a, b = pair_indices(views, paired=paired)
    rows = np.arange(views)
    flips = int(np.count_nonzero(top[a] != top[b]))
    pairs = int(a.size)
    mac_top1 = float(np.abs(p[a, top[a]] - p[b, top[a]]).mean())
    k0 = int(top[0])
    # p_k0: probability at view t of the reference class (zhang: the pair's first view's top-1).
    ref = np.repeat(top[a], 2) if paired else np.full(views, k0)
    p_k0 = p[rows, ref]
    has_label = label is not None
    known = int(label) if label is not None else -1
    label_ok = has_label and 0 <= known < classes
    p_true = p[:, known] if label_ok else np.full(views, NAN)
    metrics = ImageMetrics(
        pairs=pairs,
        flips=flips,
        p_change=flips / pairs,
        consistency=1.0 - flips / pairs,
        mac_top1=mac_top1,
        mac_true=float(np.abs(p_true[a] - p_true[b]).mean()) if label_ok else NAN,
        prob_range=float(p[:, k0].max() - p[:, k0].min()),
        n_labels=int(np.unique(top).size),
        correct0=bool(k0 == known) if has_label else None,
        frac_correct=float(np.mean(top == known)) if has_label else NAN,
        top0=k0,
        p_top0=float(p[0, k0]),
    )
    return metrics, ViewColumns(top1=top.astype(np.int64), p_k0=p_k0, p_true=p_true)
