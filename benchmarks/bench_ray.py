"""The Ray engine's speed on the invariance stage, as ratios measured in one run.

EfficientNet-Lite0 on copies of the bundled photos, protocol crop (33 views per image at 224 px),
units of ``--chunk`` images, batches of 33 views. Every configuration first runs the same
warm-up units (one or more per worker), then the timed units; start-up (Ray's workers
scheduled, torch imported, the model built) is timed apart.

Targets (issue 10):
- scaling: Ray with 2 single-thread workers vs 1, efficiency t1 / (2 t2) >= 0.8 at steady state;
- overhead: Ray's steady state with 2 single-thread workers vs the local engine with the same
  total threads (2), at most 1.3 x the time.

The rounds alternate the configurations and the best time of each is kept, so load from other
processes on the machine shows as spread between rounds rather than as a bias.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ray

from biasprobe.data.sources import bundled_photo_paths, open_source
from biasprobe.engine.ray_engine import WorkerPool, run_units, worker_shape
from biasprobe.engine.runner import Engine
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import UnitPlan, run_local
from biasprobe.invariance.protocols import ProtocolParams, parse_protocols
from biasprobe.invariance.work import InvarianceWork
from biasprobe.models import create_model

WARM_UNITS = 4


def _images(folder: Path, copies: int) -> Path:
    for name, path in bundled_photo_paths().items():
        for i in range(copies):
            shutil.copyfile(path, folder / f"{name}_{i}{path.suffix}")
    return folder


def _work(images: Path, parts: Path, runtime: Runtime) -> InvarianceWork:
    model = runtime.prepare(create_model("efficientnet_lite0"))
    params = ProtocolParams.for_model(model.preprocessing)
    records = open_source(str(images)).records
    return InvarianceWork(model, runtime, records, tuple(parse_protocols("crop")), params, 33, None, 10, parts, workers=0)


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _local(images: Path, scratch: Path, chunk: int) -> float:
    """Seconds the local engine (2 threads) takes for the timed units."""
    parts = _fresh(scratch / "local")
    work = _work(images, parts, Runtime.create(threads=2))
    plan = UnitPlan(parts, len(work.records), chunk)
    run_local(work, plan, units=plan.units[:WARM_UNITS])
    start = time.perf_counter()
    run_local(work, plan, units=plan.units[WARM_UNITS:])
    return time.perf_counter() - start


def _ray(images: Path, scratch: Path, chunk: int, workers: int) -> tuple[float, float]:
    """(start-up seconds, seconds for the timed units) with ``workers`` single-thread Ray workers."""
    parts = _fresh(scratch / f"ray{workers}")
    work = _work(images, parts, Runtime.create(threads=1))
    plan = UnitPlan(parts, len(work.records), chunk)
    engine = Engine(kind="ray", workers=workers, cpus_per_worker=1, gpus_per_worker=0)
    shape = worker_shape(engine, ray.cluster_resources(), "cpu", driver_has_cuda=False)
    started = time.perf_counter()
    pool = WorkerPool(engine, shape, ray.put(work.recipe()), "fp32")
    try:
        pool.start()
        ready = time.perf_counter() - started
        run_units(pool, plan, plan.units[:WARM_UNITS], engine, None)
        start = time.perf_counter()
        run_units(pool, plan, plan.units[WARM_UNITS:], engine, None)
        return ready, time.perf_counter() - start
    finally:
        pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=4, help="copies of the 9 bundled photos (default: 4)")
    parser.add_argument("--chunk", type=int, default=3, help="images per unit (default: 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the configurations (default: 3)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    scratch = Path(tempfile.mkdtemp(prefix="bp-bench-ray-"))
    try:
        images = _images(_fresh(scratch / "images"), args.copies)
        count = len(open_source(str(images)).records)
        timed = count - WARM_UNITS * args.chunk
        if timed < 4 * args.chunk:
            parser.error("too few images for the warm-up and the timed units: raise --copies")
        started = time.perf_counter()
        ray.init(num_cpus=2, _temp_dir=str(scratch / "ray"), include_dashboard=False, logging_level=logging.WARNING)
        init = time.perf_counter() - started
        best: dict[str, float] = {}
        ready: dict[int, list[float]] = {1: [], 2: []}
        configs = ["local", "ray1", "ray2"]
        for round_ in range(args.rounds):
            runs: dict[str, float] = {}
            for name in configs[round_ % 3:] + configs[: round_ % 3]:  # each round starts with another configuration
                if name == "local":
                    runs[name] = _local(images, scratch, args.chunk)
                else:
                    up, runs[name] = _ray(images, scratch, args.chunk, int(name[-1]))
                    ready[int(name[-1])].append(up)
            load = os.getloadavg()[0]
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {runs[k]:.2f} s" for k in configs) + f" (load average {load:.1f})",
                  flush=True)
            best = {k: min(v, best.get(k, v)) for k, v in runs.items()}
        ray.shutdown()
        views = timed * 33
        t1, t2, local = best["ray1"], best["ray2"], best["local"]
        print(f"\ninvariance, protocol crop, EfficientNet-Lite0: {timed} timed images ({views} views), units of {args.chunk}")
        print(f"start-up: ray.init {init:.1f} s; workers ready (scheduled, torch imported, model built): "
              f"1 worker {min(ready[1]):.1f} s, 2 workers {min(ready[2]):.1f} s")
        print(f"steady state (best of {args.rounds}): local engine, 2 threads {local:.2f} s ({views / local:.0f} views/s); "
              f"Ray 1 x 1 thread {t1:.2f} s ({views / t1:.0f} views/s); Ray 2 x 1 thread {t2:.2f} s ({views / t2:.0f} views/s)")
        efficiency, overhead = t1 / (2 * t2), t2 / local
        print(f"scaling efficiency t1 / (2 t2): {efficiency:.2f} (target >= 0.8) {'OK' if efficiency >= 0.8 else 'MISSED'}")
        print(f"Ray 2 x 1 thread vs local 2 threads: {overhead:.2f} x the time (target <= 1.3) {'OK' if overhead <= 1.3 else 'MISSED'}")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
