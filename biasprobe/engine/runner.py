"""Where a stage's units of work run, chosen in one place: ``Engine``.

``Engine()`` (``kind="local"``) runs the pending units in this process (``units.run_local``) and
never imports Ray. ``Engine(kind="ray", ...)`` runs them on long-lived Ray workers
(``ray_engine``, imported only then): each worker builds the stage's work once from a picklable
``WorkRecipe`` (the model rebuilt from its ``ModelFactory``, an index opened from its folder),
then runs one unit at a time, writing the same numbered files and done markers as the local
engine into the shared folder. Either way the stage assembles its outputs from the unit files.

A stage's work offers ``recipe()`` (``RemoteWork``); a worker turns the recipe back into work
with its own runtime (``WorkerSetup``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from biasprobe.core.errors import EngineError, InputError
from biasprobe.engine.choices import ENGINES
from biasprobe.engine.units import Unit, UnitPlan, UnitWork, run_local

if TYPE_CHECKING:
    from biasprobe.engine.runtime import Runtime

__all__ = ["RAY_INSTALL", "Engine", "RemoteWork", "WorkRecipe", "WorkerSetup"]

RAY_INSTALL = "pip install 'biasprobe-cnn[ray]'"
"""How to get Ray: the package's ``ray`` extra."""


@dataclass(frozen=True)
class WorkerSetup:
    """What a remote worker hands a recipe: its own runtime (device, threads, precision) and how
    many background decoding processes it may start when the stage did not say."""

    runtime: Runtime
    decode_workers: int


class WorkRecipe(Protocol):
    """A stage's work as picklable values: what a worker needs to build the work once."""

    def build(self, setup: WorkerSetup) -> UnitWork:
        """The stage's work, with the model built and prepared on ``setup.runtime``."""
        ...


class RemoteWork(UnitWork, Protocol):
    """A stage's work that can also run elsewhere: its runtime (for the precision and device
    the workers copy) and a recipe to build it again on a worker."""

    @property
    def runtime(self) -> Runtime: ...

    def recipe(self) -> WorkRecipe: ...


Progress = Callable[[int], object]


@dataclass(frozen=True)
class Engine:
    """Where units run: ``local`` (this process) or ``ray`` (Ray workers).

    Ray settings: ``ray_address`` an existing cluster (else a local Ray instance is started,
    its temporary files under ``ray_temp``, by default in the stage's unit folder or a short
    folder under the system temp); ``workers`` how many (default one per GPU, or one per CPU
    slice without GPUs); ``cpus_per_worker`` the CPUs each reserves, which are also its torch
    threads (default 1); ``gpus_per_worker`` (default 1 when the cluster has GPUs, else 0);
    ``timeout_s`` how long to wait for the workers to be scheduled before saying why not;
    ``retries`` how often a unit whose worker died is run again.
    """

    kind: str = "local"
    ray_address: str | None = None
    ray_temp: Path | None = None
    workers: int | None = None
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None
    timeout_s: float = 60.0
    retries: int = 2

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {self.kind!r}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--ray-workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker is not None and not self.cpus_per_worker > 0:
            raise InputError(f"--ray-cpus must be above 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker is not None and not self.gpus_per_worker >= 0:
            raise InputError(f"--ray-gpus must be 0 or more, got {self.gpus_per_worker}")
        if not self.timeout_s > 0 or self.retries < 0:
            raise InputError(f"--ray-timeout must be above 0 and retries 0 or more, got {self.timeout_s} and {self.retries}")
        if self.kind == "ray" and importlib.util.find_spec("ray") is None:
            raise EngineError(f"--engine ray needs Ray, which is not installed: install the ray extra ({RAY_INSTALL})")

    @property
    def remote(self) -> bool:
        """Whether units run outside this process."""
        return self.kind != "local"

    def run(self, work: RemoteWork, plan: UnitPlan, *, units: Sequence[Unit] | None = None,
            progress: Progress | None = None) -> list[Unit]:
        """Run the pending units (of ``units``, default all) of ``plan``; the units that ran.

        ``progress`` is called with each finished unit's size when units run elsewhere; the
        local engine leaves progress to the work itself (it reports per batch).
        """
        if self.kind == "local":
            return run_local(work, plan, units=units)
        from biasprobe.engine.ray_engine import run_on_ray

        return run_on_ray(self, work, plan, units=units, progress=progress)
