"""The Ray engine (``--engine ray``): a stage's units on long-lived Ray workers.

Imported only when that engine is chosen (``runner.Engine``). The driver connects to a cluster
(``ray_address``), uses a Ray already initialised in this process, or starts a local instance
whose temporary files go under a folder short enough for Ray's unix sockets (and removes it,
and shuts the instance down, at the end). It then starts the workers: one actor per GPU
(``num_gpus`` each) or per CPU slice, each with its torch and FAISS threads set explicitly
(Ray sets ``OMP_NUM_THREADS=1`` in workers). Workers that cannot be scheduled within
``timeout_s`` are reported in one line naming what was asked and what the cluster has, never
waited on forever. Each worker builds the stage's work once from the recipe (the model, an
index) and then runs one unit per call, writing the unit's numbered files and its done marker
(``UnitPlan.mark_done``, as the local engine does) into the shared folder; two units wait at
each worker so it never idles between calls. A unit whose worker died (killed, out of memory,
its node lost) goes back to the queue and the worker is replaced, up to ``retries`` times per
unit; then the run stops with one line and a re-run resumes from the finished units.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

from biasprobe.core.errors import BiasprobeError, EngineError
from biasprobe.engine.runner import Engine, Progress, RemoteWork, WorkerSetup, WorkRecipe
from biasprobe.engine.units import Unit, UnitPlan, UnitWork

__all__ = ["SOCKET_PATH_MAX", "WorkerPool", "WorkerShape", "connected", "ray_temp_folder", "run_on_ray", "run_units",
           "worker_shape"]

log = logging.getLogger(__name__)

SOCKET_PATH_MAX = 107
"""Longest unix socket path Linux accepts (bytes); Ray puts its sockets below its temp folder."""
_SOCKET_ROOM = 70
"""What Ray adds below its temp folder for its longest socket path
(``/session_<date>_<time>_<micros>_<pid>/sockets/plasma_store.N``), with a margin."""
_IN_FLIGHT = 2
"""Units waiting at each worker, so a worker starts its next unit at once."""

LOST = (RayActorError, WorkerCrashedError)
"""What Ray raises for a unit whose worker died."""


@dataclass(frozen=True)
class WorkerShape:
    """How many workers, and what each reserves and uses."""

    count: int
    cpus: float
    gpus: float
    threads: int
    decode_workers: int
    device: str

    def each(self) -> str:
        """``1 CPU and 1 GPU``: what each worker reserves."""
        return f"{self.cpus:g} CPU" + (f" and {self.gpus:g} GPU" if self.gpus else "")

    def ask(self) -> str:
        """``2 workers of 1 CPU and 1 GPU each``."""
        return f"{self.count} worker{'s' if self.count != 1 else ''} of {self.each()} each"


def worker_shape(engine: Engine, total: Mapping[str, float], driver_device: str, *, driver_has_cuda: bool) -> WorkerShape:
    """The workers to start on a cluster with ``total`` resources (``ray.cluster_resources()``).

    Default: one worker per GPU (1 GPU each) when the cluster has GPUs, else one per CPU. A CPU
    worker reserves 1 CPU unless told, a GPU worker its share of the cluster's CPUs (CPUs / GPUs
    per GPU it holds); each runs that many torch threads. GPU workers decode in background
    processes (all their CPUs but two, at least 1, at most 16: engine.stream.default_workers'
    rule), CPU workers between batches (their cores run the forward pass).
    Workers with GPUs run on CUDA unless the driver was told to use the CPU on a machine with CUDA.
    """
    cluster_gpus, cluster_cpus = float(total.get("GPU", 0.0)), float(total.get("CPU", 0.0))
    gpus = engine.gpus_per_worker if engine.gpus_per_worker is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    share = math.floor(cluster_cpus * gpus / cluster_gpus) if gpus > 0 and cluster_gpus > 0 else 1
    cpus = engine.cpus_per_worker if engine.cpus_per_worker is not None else float(max(1, share))
    fits = cluster_gpus / gpus if gpus > 0 else cluster_cpus / cpus
    count = engine.workers if engine.workers is not None else max(1, math.floor(fits + 1e-9))
    threads = max(1, math.floor(cpus + 1e-9))
    if gpus > 0:
        device = "cpu" if driver_device == "cpu" and driver_has_cuda else "auto"
        decode = max(1, min(16, threads - 2))
    else:
        device, decode = "cpu", 0
    return WorkerShape(count, cpus, gpus, threads, decode, device)


def _fits_sockets(folder: Path) -> bool:
    return len(str(folder).encode()) + _SOCKET_ROOM <= SOCKET_PATH_MAX


def ray_temp_folder(engine: Engine, default: Path) -> tuple[Path, bool]:
    """Where a local Ray instance keeps its temporary files, and whether to remove it afterwards.

    ``engine.ray_temp`` when given (kept); else ``default`` (in the stage's unit folder) when its
    path leaves room for Ray's socket paths, else a new short folder under the system temp.
    """
    if engine.ray_temp is not None:
        chosen = engine.ray_temp.expanduser().resolve()
        if not _fits_sockets(chosen):
            room = SOCKET_PATH_MAX - _SOCKET_ROOM
            raise EngineError(f"--ray-temp {chosen} is too long for Ray's socket paths ({len(str(chosen))} characters; "
                              f"at most {room}): choose a shorter folder")
        return chosen, False
    default = default.resolve()
    if _fits_sockets(default):
        return default, True
    short = Path(tempfile.mkdtemp(prefix="bp-ray-"))
    if not _fits_sockets(short):
        short.rmdir()
        raise EngineError(f"the system temp folder {short.parent} is too long for Ray's socket paths: pass --ray-temp with a short folder")
    log.info("Ray's temporary files go to %s (%s is too long a path for Ray's sockets; --ray-temp chooses)", short, default)
    return short, True


@contextmanager
def connected(engine: Engine, default_temp: Path) -> Iterator[None]:
    """Ray ready for use in this process (a context): an existing cluster, the Ray this process already
    joined, or a local instance started here (and shut down, its temp folder removed, after)."""
    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
    remove: Path | None = None
    try:
        if engine.ray_address is not None:
            ray.init(address=engine.ray_address, **options)
        else:
            temp, owned = ray_temp_folder(engine, default_temp)
            remove = temp if owned else None
            temp.mkdir(parents=True, exist_ok=True)
            ray.init(_temp_dir=str(temp), **options)
        yield
    finally:
        ray.shutdown()
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)


def _resources(values: Mapping[str, float], total: Mapping[str, float]) -> str:
    """``2 CPU, 1 GPU``: the CPUs and GPUs of ``values`` (0 where the cluster has some but none are in ``values``)."""
    shown = [f"{float(values.get(kind, 0.0)):g} {kind}" for kind in ("CPU", "GPU") if kind in total or kind == "CPU"]
    return ", ".join(shown)


def _cause(exc: RayTaskError) -> BaseException:
    """A worker's user-facing error as itself (one line); anything else as Ray reported it."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BiasprobeError) else exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UnitWorker:
    """One long-lived worker: builds the stage's work once, then runs units one at a time."""

    def __init__(self) -> None:
        self.work: UnitWork | None = None

    def pid(self) -> int:
        """The worker's process id (answered as soon as the worker is scheduled)."""
        return os.getpid()

    def load(self, recipe: WorkRecipe, device: str, threads: int, precision: str, decode_workers: int) -> dict[str, object]:
        """Build the work (model, index) with this worker's runtime; its runtime record."""
        from biasprobe.engine.runtime import Runtime

        runtime = Runtime.create(device=device, threads=threads, precision=precision)
        self.work = recipe.build(WorkerSetup(runtime, decode_workers))
        return runtime.to_dict()

    def run(self, plan: UnitPlan, unit: Unit) -> int:
        """Write one unit's files, then its done marker; the unit's number."""
        if self.work is None:
            raise RuntimeError("the worker ran a unit before loading its work")
        self.work.run([unit], plan.mark_done)
        return unit.number


RemoteUnitWorker = ray.remote(max_restarts=0, max_task_retries=0)(UnitWorker)
"""``UnitWorker`` as a Ray actor class (replaced by the driver when it dies, never restarted by Ray)."""


def _finished(ref: Any) -> bool:
    """Whether a unit's call succeeded (False: its worker died first); a user-facing error is raised."""
    try:
        ray.get(ref)
    except LOST:
        return False
    except RayTaskError as exc:
        raise _cause(exc) from exc
    return True


class WorkerPool:
    """The workers: started, loaded, replaced when one dies, killed at the end."""

    def __init__(self, engine: Engine, shape: WorkerShape, recipe: Any, precision: str) -> None:
        self.engine = engine
        self.shape = shape
        self.recipe = recipe  # an ObjectRef: the recipe is sent to the object store once
        self.precision = precision
        self.actors: list[Any] = []
        self.generation: list[int] = []

    def _new(self) -> Any:
        return RemoteUnitWorker.options(num_cpus=self.shape.cpus, num_gpus=self.shape.gpus).remote()

    def _scheduled(self, actors: list[Any], what: str) -> None:
        """Wait until ``actors`` run (their pid answers), at most ``timeout_s``; else one line."""
        pings = [actor.pid.remote() for actor in actors]
        ready, waiting = ray.wait(pings, num_returns=len(pings), timeout=self.engine.timeout_s)
        if waiting:
            total = ray.cluster_resources()
            raise EngineError(
                f"Ray could not schedule {len(waiting)} of {len(actors)} {what} ({self.shape.each()} each) within "
                f"{self.engine.timeout_s:g} s; the cluster has {_resources(total, total)} "
                f"({_resources(ray.available_resources(), total)} free): ask for fewer or smaller workers "
                "(--ray-workers, --ray-cpus, --ray-gpus) or wait longer (--ray-timeout)"
            )
        try:
            ray.get(ready)
        except LOST as exc:
            raise EngineError(f"a Ray worker died as it started: {_first_line(exc)}") from exc

    def _load(self, actors: list[Any]) -> list[dict[str, object]]:
        shape = self.shape
        calls = [actor.load.remote(self.recipe, shape.device, shape.threads, self.precision, shape.decode_workers)
                 for actor in actors]  # fmt: skip
        try:
            return list(ray.get(calls))
        except RayTaskError as exc:
            raise _cause(exc) from exc
        except LOST as exc:
            raise EngineError(f"a Ray worker died while loading the model: {_first_line(exc)}") from exc

    def start(self) -> None:
        started = time.perf_counter()
        self.actors = [self._new() for _ in range(self.shape.count)]
        self.generation = [0] * self.shape.count
        self._scheduled(self.actors, "workers")
        runtimes = self._load(self.actors)
        log.info("Ray: %s ready in %.1f s (runtime %s)", self.shape.ask(), time.perf_counter() - started, runtimes[0])

    def replace(self, slot: int) -> None:
        """A new worker in ``slot`` (its predecessor died)."""
        self.actors[slot] = self._new()
        self.generation[slot] += 1
        self._scheduled([self.actors[slot]], "replacement workers")
        self._load([self.actors[slot]])

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


def run_units(pool: WorkerPool, plan: UnitPlan, todo: Sequence[Unit], engine: Engine, progress: Progress | None) -> list[Unit]:
    """Run every unit of ``todo`` on the pool. When a worker dies, the unit it was running
    counts one loss (at most ``engine.retries`` are forgiven) and goes back to the queue with
    the units that waited at that worker; a new worker takes its place."""
    queue = deque(todo)
    in_flight: dict[Any, tuple[int, int, int, Unit]] = {}  # ref -> (slot, worker generation, submission, unit)
    submitted = 0
    lost: Counter[int] = Counter()
    ran: list[Unit] = []

    def fill() -> None:
        nonlocal submitted
        waiting = Counter(slot for slot, _gen, _seq, _unit in in_flight.values())
        for slot, actor in enumerate(pool.actors):
            while queue and waiting[slot] < _IN_FLIGHT:
                unit = queue.popleft()
                in_flight[actor.run.remote(plan, unit)] = (slot, pool.generation[slot], submitted, unit)
                submitted += 1
                waiting[slot] += 1

    def done(unit: Unit) -> None:
        ran.append(unit)
        if progress is not None:
            progress(unit.size)

    fill()
    while in_flight:
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        slot, generation, seq, unit = in_flight.pop(ref)
        try:
            ray.get(ref)
        except LOST as exc:
            dead = [(seq, unit)]
            for other in [r for r, (s, g, _q, _u) in in_flight.items() if (s, g) == (slot, generation)]:
                _s, _g, other_seq, other_unit = in_flight.pop(other)
                if _finished(other):  # done before the worker died
                    done(other_unit)
                else:
                    dead.append((other_seq, other_unit))
            dead.sort(key=lambda item: item[0])  # a worker runs its units in the order they were sent
            for finished in [u for _q, u in dead if plan.is_done(u)]:  # marked done, its answer lost with the worker
                done(finished)
            lost_units = [u for _q, u in dead if u not in ran]
            if lost_units:
                running = lost_units[0]
                lost[running.number] += 1
                if lost[running.number] > engine.retries:
                    times = "once" if lost[running.number] == 1 else f"{lost[running.number]} times"
                    raise EngineError(
                        f"unit {running.number} (images {running.start}-{running.stop - 1}) lost its Ray worker {times} "
                        f"(last: {_first_line(exc)}); finished units are kept: run the command again to resume"
                    ) from exc
                log.warning("Ray worker %d died during unit %d (%s); running the unit again", slot, running.number,
                            _first_line(exc))
                queue.extendleft(reversed(lost_units))
            pool.replace(slot)
        except RayTaskError as exc:
            raise _cause(exc) from exc
        else:
            done(unit)
        fill()
    return ran


def run_on_ray(engine: Engine, work: RemoteWork, plan: UnitPlan, *, units: Sequence[Unit] | None = None,
               progress: Progress | None = None) -> list[Unit]:
    """Run the pending units (of ``units``, default all) of ``plan`` on Ray workers; the units
    that ran. Finished units are skipped; the workers mark each unit done as the local engine does."""
    todo = plan.pending(units, warn=units is None)
    if not todo:
        return []
    import torch

    recipe = work.recipe()
    runtime = work.runtime
    with connected(engine, plan.folder / "ray"):
        shape = worker_shape(engine, ray.cluster_resources(), runtime.device.type, driver_has_cuda=torch.cuda.is_available())
        shape = replace(shape, count=min(shape.count, len(todo)))  # no worker without a unit
        pool = WorkerPool(engine, shape, ray.put(recipe), runtime.precision)
        try:
            pool.start()
            return run_units(pool, plan, todo, engine, progress)
        finally:
            pool.close()
