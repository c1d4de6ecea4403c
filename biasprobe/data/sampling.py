"""A seeded sample of N images, stratified by label (``--sample N``; ``--limit N`` takes the first N).

The sample depends on the seed and on which files and labels there are, not on the order the
source lists them: candidates are put in a canonical order (by normalised absolute path) before
the seeded permutation, so a folder and a shuffled CSV of the same files give the same sample.

With labels, each label (a stratum; images without a label form one more) gets its share of N
by proportional allocation with largest remainders (Hamilton's method; ties go to the smaller
label), and when N is at least the number of strata every stratum gets at least one image, taken
from the strata furthest above their exact quota. Within a stratum, the first images of the
seeded permutation are taken.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = ["allocate", "sample_positions"]


def allocate(sizes: Sequence[int], n: int) -> list[int]:
    """How many of each stratum a sample of ``n`` takes (``sizes``: the strata's sizes, >= 1)."""
    total = sum(sizes)
    if n >= total:
        return list(sizes)
    counts = [n * size // total for size in sizes]
    remainders = [n * size % total for size in sizes]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    if n >= len(sizes):
        for empty in [i for i, c in enumerate(counts) if c == 0]:
            # the stratum furthest above its exact quota n * size / total gives one image
            donor = max((j for j, c in enumerate(counts) if c >= 2), key=lambda j: (counts[j] * total - n * sizes[j], -j))
            counts[donor] -= 1
            counts[empty] += 1
    return counts


def _canonical(path: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def sample_positions(paths: Sequence[str | os.PathLike[str]], strata: Sequence[Hashable], n: int, seed: int) -> list[int]:
    """Positions (ascending) of a seeded sample of ``n`` items, stratified by ``strata``
    (one value per item; ``None`` sorts last); every item when ``n`` is at least their number."""
    count = len(paths)
    if n >= count:
        return list(range(count))
    names = [_canonical(p) for p in paths]
    order = sorted(range(count), key=lambda i: (names[i], strata[i] is None, str(strata[i])))
    ranked = [order[i] for i in np.random.default_rng(seed).permutation(count)]
    keys = sorted(set(strata), key=lambda s: (s is None, s if isinstance(s, int) else 0, str(s)))
    sizes = Counter(strata)
    want = dict(zip(keys, allocate([sizes[k] for k in keys], n), strict=True))
    chosen = []
    for position in ranked:
        if want[strata[position]] > 0:
            want[strata[position]] -= 1
            chosen.append(position)
    return sorted(chosen)
