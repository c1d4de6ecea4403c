"""The demo's numbered steps: a progress line each, skipped when done with the same settings.

The demo declares its steps up front (``Step``: a title and a typical share of the run), so the
counter's total is the number of steps that exist, and running a step the plan does not name
next is a bug caught at once. Each progress line says how long the run has taken and, once
the steps already run here give a basis, about how long is left: the time those steps took,
scaled by the typical shares of the steps still to come.

Each step's output gets a settings manifest beside it (``OUTPUT.demo.json``, core.manifest):
a re-run keeps a step whose output exists with the same settings and redoes (after clearing
its stale work) a step whose settings changed, so an interrupted demo resumes.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from biasprobe.core.manifest import RunManifest

__all__ = ["DemoSteps", "Step", "time_left"]

BASIS_SHARE = 0.1
"""An estimate of the time left is shown once the steps run so far make up this share of the run."""


@dataclass(frozen=True)
class Step:
    """One numbered step: its title and its typical length (seconds on a reference machine;
    only the proportions between steps matter)."""

    title: str
    weight: float


def time_left(seconds: float) -> str:
    """``about N min left`` (whole minutes, rounded), or ``under a minute left``."""
    if seconds < 60:
        return "under a minute left"
    return f"about {math.floor(seconds / 60 + 0.5)} min left"


class DemoSteps:
    """Numbered progress lines, an estimate of the time left, and skip-if-done bookkeeping."""

    def __init__(self, plan: Sequence[Step], work: Path) -> None:
        if not plan:
            raise ValueError("the demo needs at least one step")
        self.plan = tuple(plan)
        self.total = len(self.plan)
        self.done = 0
        self.work = work
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._ran_weight = 0.0
        self._ran_seconds = 0.0

    def _begin(self, title: str) -> Step:
        if self.done >= self.total:
            raise RuntimeError(f"demo step {title!r} runs after the last of the {self.total} planned steps")
        step = self.plan[self.done]
        if step.title != title:
            raise RuntimeError(f"demo step {self.done + 1} is {title!r}, but the plan names {step.title!r}")
        self.done += 1
        return step

    def estimate(self) -> float | None:
        """Seconds left for the current step and those after it, or None without a basis yet."""
        whole = sum(s.weight for s in self.plan)
        if self._ran_seconds <= 0 or self._ran_weight < BASIS_SHARE * whole:
            return None
        remaining = sum(s.weight for s in self.plan[self.done - 1:])
        return self._ran_seconds / self._ran_weight * remaining

    def _announce(self, title: str) -> None:
        elapsed = time.perf_counter() - self.started
        left = self.estimate()
        when = f"at {elapsed:.0f} s" + (f", {time_left(left)}" if left is not None else "")
        print(f"[{self.done}/{self.total}] {title} ({when})", flush=True)

    def _timed(self, step: Step, action: Callable[[], object]) -> None:
        began = time.perf_counter()
        action()
        seconds = time.perf_counter() - began
        self.timings[step.title] = round(seconds, 2)
        self._ran_weight += step.weight
        self._ran_seconds += seconds

    def run(self, title: str, output: Path, settings: dict[str, object], action: Callable[[], object],
            *, clear: Path | None = None) -> None:
        """Run ``action`` unless ``output`` exists with the same settings; ``clear`` is removed
        first when the step runs again with other settings (a stale index or part files)."""
        step = self._begin(title)
        manifest = RunManifest.at(output.with_name(output.name + ".demo.json"), settings)
        if output.exists() and manifest.matches():
            print(f"[{self.done}/{self.total}] {title}: already done, kept ({output})", flush=True)
            return
        self._announce(title)
        if clear is not None and clear.is_dir() and manifest.stored() is not None:
            shutil.rmtree(clear)
        self._timed(step, action)
        manifest.write()

    def always(self, title: str, action: Callable[[], object]) -> None:
        """A step that runs every time (the report: it is cheap and reads every step's output)."""
        step = self._begin(title)
        self._announce(title)
        self._timed(step, action)
