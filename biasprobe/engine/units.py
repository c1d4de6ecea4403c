"""Units of work: a heavy stage cut into numbered, independent pieces whose outputs are files.

A stage (embedding shards, invariance chunks) describes its work as a ``UnitPlan``: ``count``
records cut into units of ``size`` consecutive positions, unit ``i`` covering
``[i * size, (i + 1) * size)``. Each unit writes its own numbered files into the plan's
folder and is then marked done (``done/NNNNNN.json``, written last), so any subset of units,
finished in any order, is kept by a re-run; the stage assembles its outputs from the unit
files once every unit is done. Batches never cross a unit boundary, so a unit's results do
not depend on which other units ran with it (docs/protocols.md section 6).

A unit's done marker records the size and SHA-256 of every file the unit wrote
(``finished(unit, files)``). A unit counts as done only while its marker describes it and each
of those files still matches: a unit whose files were deleted, truncated, edited or swapped
with another unit's is run again (and a warning names the file), so damaged work is redone,
never trusted (docs/reliability.md). Checking costs one read of the finished files when a
run resumes, several units at a time.

A runner executes units: ``run_local`` is the single-process loop. A remote worker needs
only what a ``UnitWork`` holds (picklable settings and a model factory), the units to run,
and the shared folder.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from biasprobe.core.digests import FileDigest, digests_from_json, digests_to_json, in_parallel, problem
from biasprobe.core.errors import InputError
from biasprobe.core.io import write_json

__all__ = ["Finished", "Unit", "UnitPlan", "UnitWork", "consecutive_runs", "parts_dir_for", "parts_folder", "run_local"]

log = logging.getLogger(__name__)


def parts_dir_for(out: str | Path) -> Path:
    """``X.parquet`` -> ``X.parts/``, where a table's finished units wait until the run completes."""
    out = Path(out)
    return out.with_name(f"{out.name.removesuffix('.parquet')}.parts")


@contextmanager
def parts_folder(parts_dir: str | Path | None) -> Iterator[Path]:
    """``parts_dir`` itself, or a temporary folder removed afterwards (a run that cannot resume)."""
    if parts_dir is not None:
        yield Path(parts_dir)
        return
    with tempfile.TemporaryDirectory(prefix="biasprobe-parts-") as tmp:
        yield Path(tmp)


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

    def _marker(self, unit: Unit) -> dict[str, Any] | None:
        """The marker's JSON object when it describes this very unit, else None."""
        path = self.marker(unit)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or {k: data.get(k) for k in ("number", "start", "stop")} != unit.to_dict():
            return None
        return data

    def files(self, unit: Unit) -> dict[str, FileDigest]:
        """The files a finished unit recorded in its marker (paths relative to ``folder``)."""
        data = self._marker(unit)
        if data is None:
            raise InputError(f"unit {unit.number} in {self.folder} is not finished")
        return digests_from_json(data.get("files", {}))

    def problem(self, unit: Unit) -> str | None:
        """None when the unit is done; else why not ('not finished', or which file changed)."""
        data = self._marker(unit)
        if data is None or "files" not in data:  # no marker, another unit's, or one that records no files
            return "not finished"
        try:
            recorded = digests_from_json(data["files"])
        except ValueError:
            return f"its done marker {self.marker(unit).name} is damaged"
        for name, digest in recorded.items():
            why = problem(self.folder / name, digest)
            if why is not None:
                return f"{name} {why}"
        return None

    def is_done(self, unit: Unit) -> bool:
        """Whether the unit finished: its marker describes this very unit and every file it
        recorded still has the recorded size and SHA-256."""
        return self.problem(unit) is None

    def mark_done(self, unit: Unit, files: Sequence[Path] = ()) -> None:
        """Record that the unit's ``files`` are complete (call after writing them): their sizes
        and SHA-256 go into the marker, which is written last."""
        root = self.folder.resolve()
        digests = {Path(f).resolve().relative_to(root).as_posix(): FileDigest.of_file(f) for f in files}
        write_json({**unit.to_dict(), "files": digests_to_json(digests)}, self.marker(unit))

    def finished(self) -> list[Unit]:
        return [u for u in self.units if self.is_done(u)]

    def pending(self, units: Sequence[Unit] | None = None, *, warn: bool = True) -> list[Unit]:
        """The units (of ``units``, default all) still to run; a unit whose marker is there but
        whose files changed is one of them, and a warning says which file."""
        todo = []
        candidates = self.units if units is None else list(units)
        for unit, why in zip(candidates, in_parallel(self.problem, candidates), strict=True):
            if why is None:
                continue
            if warn and why != "not finished":
                log.warning("unit %d in %s is run again: %s", unit.number, self.folder, why)
            todo.append(unit)
        return todo


Finished = Callable[[Unit, Sequence[Path]], None]
"""What a unit's work calls once the unit's files are written: ``finished(unit, files)``."""


class UnitWork(Protocol):
    """A stage's work on units: write each unit's files, then call ``finished(unit, files)``."""

    def run(self, units: Sequence[Unit], finished: Finished) -> None: ...


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

    Returns the units that ran; finished ones are skipped, whichever subset they are, and a
    finished unit whose files changed since is run again. Units given explicitly are taken to
    come from ``plan.pending()``, which has already warned about changed files.
    """
    todo = plan.pending(units, warn=units is None)
    for run in consecutive_runs(todo):
        work.run(run, plan.mark_done)
    return todo
