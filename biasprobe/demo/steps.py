"""The demo's numbered steps: a progress line each, skipped when done with the same settings.

Each step's output gets a settings manifest beside it (``OUTPUT.demo.json``, core.manifest):
a re-run keeps a step whose output exists with the same settings and redoes (after clearing
its stale work) a step whose settings changed, so an interrupted demo resumes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from biasprobe.core.manifest import RunManifest

__all__ = ["DemoSteps"]


class DemoSteps:
    """Numbered progress lines and skip-if-done bookkeeping for the demo's steps."""

    def __init__(self, total: int, work: Path) -> None:
        self.total = total
        self.done = 0
        self.work = work
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    def run(self, title: str, output: Path, settings: dict[str, object], action: Callable[[], object],
            *, clear: Path | None = None) -> None:
        """Run ``action`` unless ``output`` exists with the same settings; ``clear`` is removed
        first when the step runs again with other settings (a stale index or part files)."""
        self.done += 1
        manifest = RunManifest.at(output.with_name(output.name + ".demo.json"), settings)
        elapsed = time.perf_counter() - self.started
        if output.exists() and manifest.matches():
            print(f"[{self.done}/{self.total}] {title}: already done, kept ({output})", flush=True)
            return
        print(f"[{self.done}/{self.total}] {title} (at {elapsed:.0f} s)", flush=True)
        if clear is not None and clear.is_dir() and manifest.stored() is not None:
            shutil.rmtree(clear)
        began = time.perf_counter()
        action()
        self.timings[title] = round(time.perf_counter() - began, 2)
        manifest.write()
