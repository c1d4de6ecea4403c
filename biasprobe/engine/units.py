"""Units of work: a heavy stage cut into numbered, independent pieces whose outputs are files.

A stage (embedding shards, invariance chunks) describes its work as a ``UnitPlan``: ``count``
records cut into units of ``size`` consecutive positions, unit ``i`` covering
``[i * size, (i + 1) * size)``. Each unit writes its own numbered files into the plan's
folder and is then marked done (``done/NNNNNN.json``, written last), so any subset of units,
finished in any order, is kept by a re-run; the stage assembles its outputs from the unit
files once every unit is done. Batches never cross a unit boundary, so a unit's results do
not depend on which other units ran with it (docs/protocols.md section 6).

A runner executes units: ``run_local`` is the single-process loop. A remote worker needs
only what a ``UnitWork`` holds (picklable settings and a model factory), the units to run,
and the shared folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from biasprobe.core.errors import InputError
from biasprobe.core.io import write_json

__all__ = ["Unit", "UnitPlan", "UnitWork", "consecutive_runs", "run_local"]


@dataclass(frozen=True)
class Unit:
    """One numbered unit: the source positions ``[start, stop)``."""

    number: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def to_dict(self) -> dict[str, int]:
        return {"number": self.number, "start": self.start, "stop": self.stop}


@dataclass(frozen=True)
class UnitPlan:
    """``count`` positions cut into units of ``size``, with done markers under ``folder``."""

    folder: Path
    count: int
    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise InputError(f"a unit must hold at least 1 image, got {self.size}")

    @property
    def units(self) -> list[Unit]:
        """Every unit in order (one empty unit when there is nothing to do)."""
        n = max(1, -(-self.count // self.size))
        return [Unit(i, i * self.size, min((i + 1) * self.size, self.count)) for i in range(n)]

    def marker(self, unit: Unit) -> Path:
        return self.folder / "done" / f"{unit.number:06d}.json"

    def is_done(self, unit: Unit) -> bool:
        """Whether the unit finished: its marker exists and describes this very unit."""
        path = self.marker(unit)
        if not path.is_file():
            return False
        try:
            return bool(json.loads(path.read_text()) == unit.to_dict())
        except (OSError, ValueError):
            return False

    def mark_done(self, unit: Unit) -> None:
        """Record that the unit's files are complete (call after writing them)."""
        write_json(unit.to_dict(), self.marker(unit))

    def finished(self) -> list[Unit]:
        return [u for u in self.units if self.is_done(u)]

    def pending(self) -> list[Unit]:
        return [u for u in self.units if not self.is_done(u)]


class UnitWork(Protocol):
    """A stage's work on units: write each unit's files, then call ``finished(unit)``."""

    def run(self, units: Sequence[Unit], finished: Callable[[Unit], None]) -> None: ...


def consecutive_runs(units: Iterable[Unit]) -> list[list[Unit]]:
    """Group units into runs of consecutive numbers (one input stream per run)."""
    runs: list[list[Unit]] = []
    for unit in units:
        if runs and runs[-1][-1].number + 1 == unit.number:
            runs[-1].append(unit)
        else:
            runs.append([unit])
    return runs


def run_local(work: UnitWork, plan: UnitPlan, *, units: Sequence[Unit] | None = None) -> list[Unit]:
    """Run the pending units (of ``units``, default all) in this process, in order.

    Returns the units that ran; finished ones are skipped, whichever subset they are.
    """
    wanted = plan.units if units is None else list(units)
    todo = [u for u in wanted if not plan.is_done(u)]
    for run in consecutive_runs(todo):
        work.run(run, plan.mark_done)
    return todo
