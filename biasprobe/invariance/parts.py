"""The files of the invariance stage's units, in ``X.parts/`` until the run completes.

Unit ``i`` (images ``[i * chunk_images, (i + 1) * chunk_images)`` of the source) writes
``part_{i:06d}.parquet`` (images table), ``part_{i:06d}.views.parquet`` and
``part_{i:06d}.skipped.parquet``; the unit plan's done marker follows them, with their sizes and
SHA-256 (a unit whose part files changed since is measured again). ``run.json`` holds the run's
settings (core.manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from biasprobe.core.io import companion, read_table, write_table
from biasprobe.core.schemas import INVARIANCE_TABLE, SKIPPED_TABLE, VIEWS_TABLE, conform
from biasprobe.engine.units import parts_dir_for

__all__ = ["Part", "part_files", "parts_dir_for", "read_part", "write_part"]


@dataclass(frozen=True)
class Part:
    """The three tables of one unit."""

    images: pd.DataFrame
    views: pd.DataFrame
    skipped: pd.DataFrame


def part_files(parts_dir: Path, unit: int) -> tuple[Path, Path, Path]:
    """The images table of unit ``unit`` and its views and skipped companions."""
    images = parts_dir / f"part_{unit:06d}.parquet"
    return images, companion(images, "views"), companion(images, "skipped")


def write_part(parts_dir: Path, unit: int, part: Part) -> None:
    """Write one unit's tables (the caller marks the unit done afterwards)."""
    images_path, views_path, skipped_path = part_files(parts_dir, unit)
    write_table(part.views, views_path)
    write_table(part.skipped, skipped_path)
    write_table(part.images, images_path)


def read_part(parts_dir: Path, unit: int) -> Part:
    """Read one finished unit's tables, in the schemas' dtypes."""
    images_path, views_path, skipped_path = part_files(parts_dir, unit)
    return Part(
        conform(read_table(images_path), INVARIANCE_TABLE, what=str(images_path)),
        conform(read_table(views_path), VIEWS_TABLE, what=str(views_path)),
        conform(read_table(skipped_path), SKIPPED_TABLE, what=str(skipped_path)),
    )
