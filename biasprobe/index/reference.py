"""The leave-one-out reference of an index (docs/protocols.md section 4).

For every distinct training image (or a seeded sample of ``REFERENCE_SAMPLE`` above
``REFERENCE_ALL_UP_TO`` images): its sorted distances to its nearest ``k_ref`` =
min(``K_MAX``, distinct images - 1) other training images. ``atypicality`` at k compares a
query's ``knn_dist`` with these images' leave-one-out ``knn_dist`` at the same k.
"""

from __future__ import annotations

import logging

import numpy as np

from biasprobe.core.errors import InputError
from biasprobe.index.meta import ReferenceInfo
from biasprobe.index.neighbours import ById

__all__ = ["K_MAX", "REFERENCE_ALL_UP_TO", "REFERENCE_SAMPLE", "leave_one_out_reference"]

log = logging.getLogger(__name__)

K_MAX = 50
REFERENCE_ALL_UP_TO = 100_000
REFERENCE_SAMPLE = 50_000


def leave_one_out_reference(
    neighbours: ById, *, seed: int = 0, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, ReferenceInfo]:
    """Sorted leave-one-out distances (m, k_ref) float32, their rows (m,) int64 (one per id), and what was done."""
    if neighbours.unique_count < 2:
        raise InputError(f"an index needs at least 2 distinct training images, got {neighbours.unique_count}")
    first_rows = neighbours.first_rows
    sampled = len(first_rows) > REFERENCE_ALL_UP_TO
    if sampled:
        rng = np.random.default_rng(seed)
        first_rows = np.sort(rng.choice(first_rows, size=REFERENCE_SAMPLE, replace=False))
    k_ref = min(K_MAX, neighbours.unique_count - 1)
    log.info("leave-one-out reference: the %d nearest other training images of %d%s images", k_ref, len(first_rows),
             " sampled" if sampled else "")  # fmt: skip
    d, _ = neighbours.knn(neighbours.store.take(first_rows), k_ref, neighbours.ids[first_rows], progress=progress,
                          desc="leave-one-out")  # fmt: skip
    info = ReferenceInfo(k_max=K_MAX, k_ref=k_ref, images=len(first_rows), sampled=sampled,
                         seed=seed if sampled else None, distinct_images=neighbours.unique_count)
    return d, first_rows, info
