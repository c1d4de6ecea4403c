"""The layer profile of docs/protocols.md section 7: how far the representation at each probe
moves between views, against how far apart different images are.

Each view's features at a probe are its spatially averaged feature vector ``g(x)`` (float32),
compared in float64 by ``d(a, b) = 1 - cos(a, b)``, computed as ``||a/|a| - b/|b| ||^2 / 2``
(exactly 0 for equal vectors). A zero vector is at 0 from a zero vector and at 1 from any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biasprobe.layers.probes import ProbePoint

__all__ = ["MAX_SPREAD_IMAGES", "ProbeLayout", "cosine_distance", "layer_changes", "spread"]

MAX_SPREAD_IMAGES = 256
"""``spread`` uses at most the first this many distinct images in image_id order."""


@dataclass(frozen=True)
class ProbeLayout:
    """Where each probe's vector sits in a view's concatenated features."""

    probes: tuple[ProbePoint, ...]

    @property
    def width(self) -> int:
        return sum(p.channels for p in self.probes)

    def slices(self) -> list[slice]:
        out, start = [], 0
        for probe in self.probes:
            out.append(slice(start, start + probe.channels))
            start += probe.channels
        return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - cos(a, b)`` row by row, in float64 (a zero vector: 0 to a zero vector, 1 to others)."""
    ua, ub = _unit(a), _unit(b)
    d = 0.5 * np.square(ua - ub).sum(axis=-1)
    za, zb = ~ua.any(axis=-1), ~ub.any(axis=-1)
    return np.where(za & zb, 0.0, np.where(za | zb, 1.0, d))


def layer_changes(features: np.ndarray, layout: ProbeLayout) -> list[tuple[float, float]]:
    """Per probe, ``(change_1, change_aligned)`` of one image's views ``(V, width)``.

    ``change_1`` is the mean distance over adjacent views; ``change_aligned`` over views ``s``
    steps apart, ``s`` the probe's stride (NaN when ``s`` exceeds the ``V - 1`` steps).
    """
    out = []
    steps = features.shape[0] - 1
    for probe, cols in zip(layout.probes, layout.slices(), strict=True):
        g = features[:, cols]
        change_1 = float(cosine_distance(g[:-1], g[1:]).mean()) if steps >= 1 else float("nan")
        s = probe.stride
        aligned = float(cosine_distance(g[:-s], g[s:]).mean()) if s <= steps else float("nan")
        out.append((change_1, aligned))
    return out


def spread(first: np.ndarray, image_ids: Sequence[str]) -> float:
    """The median distance between the vectors of different images (NaN with fewer than 2).

    ``first`` holds one vector per row with its image id; duplicates of an id count once, and at
    most the first ``MAX_SPREAD_IMAGES`` ids in sorted order are used.
    """
    ids = np.asarray([str(i) for i in image_ids])
    _, keep = np.unique(ids, return_index=True)  # sorted ids, first row of each
    keep = keep[:MAX_SPREAD_IMAGES]
    if keep.size < 2:
        return float("nan")
    u = _unit(first[keep])
    zero = np.asarray(~u.any(axis=1), dtype=bool)
    gram = np.clip(u @ u.T, -1.0, 1.0)
    d = 1.0 - gram
    both, one = zero[:, None] & zero[None, :], zero[:, None] ^ zero[None, :]
    d = np.where(both, 0.0, np.where(one, 1.0, d))
    upper = np.triu_indices(keep.size, k=1)
    return float(np.median(d[upper]))
