"""Time outside the forward pass: the whole ``biasprobe invariance`` command against a tuned bare
forward of exactly its views, as a ratio measured in one run (issue 14).

- the command: ``python -m biasprobe invariance --model efficientnet_lite0 --images PHOTOS
  --protocol crop,black --out OUT/x.parquet`` as a subprocess, a fresh out folder each time,
  timed from launch to exit (interpreter start-up, imports, model build, decoding, views,
  metrics, writing: everything);
- the bare forward: the same model on the same runtime (threads, channels_last, inference mode)
  over the same views in the same batches (units of 32 images, batches of 64 views cut within a
  unit), the views made beforehand and converted to the model's input outside the timer; only the
  model's forward is timed, after one warm-up batch.

The ratio is bare forward seconds / command wall seconds; the target is >= 0.8 (everything
outside the forward pass under 20% of the run). Rounds alternate the two (the machine may be
shared); the ratio of the medians is the figure. ``--profile`` adds one more command run
under a sampling profiler (the main thread's stack every few ms, each sample put in one bucket:
imports, model build, decoding, views, input conversion, forward, kNN, metrics, writing...) and
the slowest top-level imports of ``python -X importtime``.

PHOTOS are the bundled photos (``builtin:photos``, nine) copied ``--copies`` times into a
temporary folder: 36 photos by default; crop and black give 66 views each, 2,376 in all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

MODEL = "efficientnet_lite0"

# Sampled stacks go to the first bucket any of whose (file suffix, function) pairs is on the stack
# (function None: any function of that file). Order matters: an import inside the model build is
# an import; a resize inside a protocol's builder is resizing.
BUCKETS: list[tuple[str, list[tuple[str, str | None]]]] = [
    ("imports", [("<frozen importlib._bootstrap>", None), ("<frozen importlib._bootstrap_external>", None)]),
    ("kNN", [("biasprobe/index/training_index.py", "knn_dist")]),
    ("forward", [("biasprobe/models/spec.py", "forward")]),
    ("uint8 -> float, normalise, fill", [("biasprobe/invariance/views.py", "views_to_input"),
                                         ("biasprobe/engine/runtime.py", "to_input")]),
    ("decoding", [("biasprobe/data/loading.py", None), ("biasprobe/data/sources.py", "load")]),
    ("resizing", [("biasprobe/data/transforms.py", None)]),
    ("view construction", [("biasprobe/invariance/protocols.py", None), ("biasprobe/invariance/views.py", "prepare_views")]),
    ("softmax, read-back", [("biasprobe/invariance/batching.py", None)]),
    ("metrics (per image rows)", [("biasprobe/invariance/work.py", "_measure"), ("biasprobe/invariance/metrics.py", None)]),
    ("unit files + done markers", [("biasprobe/invariance/parts.py", "write_part"), ("biasprobe/engine/units.py", "mark_done")]),
    ("decoding stream", [("biasprobe/engine/stream.py", None), ("torch/utils/data/", None)]),
    ("reading unit files", [("biasprobe/invariance/parts.py", "read_part"), ("biasprobe/engine/units.py", "pending")]),
    ("dataset figures (bootstrap CIs)", [("biasprobe/invariance/summary.py", None)]),
    ("writing the tables", [("biasprobe/invariance/run.py", "write_result")]),
    ("model build", [("biasprobe/models/", None)]),
    ("runtime", [("biasprobe/engine/runtime.py", None)]),
    ("opening the source", [("biasprobe/cli/preamble.py", "source_from_args")]),
    ("printing the table", [("biasprobe/cli/invariance_cmd.py", "_print_table")]),
]


def photo_folder(root: Path, copies: int) -> Path:
    """The bundled photos, each copied ``copies`` times (``NAME_i.ext``)."""
    from biasprobe.data.photos import bundled_photo_paths

    folder = root / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        for name, path in bundled_photo_paths().items():
            shutil.copyfile(path, folder / f"{name}_{i}{path.suffix}")
    return folder


def command(photos: Path, out: Path, protocols: str, batch_size: int) -> list[str]:
    return ["-m", "biasprobe", "invariance", "--model", MODEL, "--images", str(photos), "--protocol", protocols,
            "--out", str(out / "x.parquet"), "--batch-size", str(batch_size)]  # fmt: skip


def time_command(args: list[str], out: Path, env: dict[str, str]) -> float:
    """Wall seconds of ``python ARGS`` from launch to exit, into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the command failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


class BareForward:
    """The model and the command's batches of views, made once; ``run()`` times the forward only."""

    def __init__(self, photos: Path, protocols: str, batch_size: int) -> None:
        import torch

        from biasprobe.data.sources import open_source
        from biasprobe.engine.runtime import Runtime
        from biasprobe.invariance.protocols import ProtocolParams, parse_protocols
        from biasprobe.invariance.run import DEFAULT_CHUNK_IMAGES
        from biasprobe.invariance.views import prepare_views
        from biasprobe.models import create_model

        self.runtime = Runtime.create()
        self.model = self.runtime.prepare(create_model(MODEL))
        chosen = parse_protocols(protocols)
        params = ProtocolParams.for_model(self.model.preprocessing)
        names = tuple(p.name for p in chosen)
        fill_per_image = [p.fill for p in chosen for _ in range(p.n_views(params))]
        records = open_source(str(photos)).records
        self.batches: list[tuple[torch.Tensor, list[bool]]] = []  # uint8 views and their fill flags
        for first in range(0, len(records), DEFAULT_CHUNK_IMAGES):  # batches never cross a unit
            unit = []
            for record in records[first : first + DEFAULT_CHUNK_IMAGES]:
                image, image_id = record.load()
                unit.append(prepare_views(image, record, image_id, protocols=names, params=params))
            views = torch.cat(unit)
            fill = fill_per_image * len(unit)
            for start in range(0, len(views), batch_size):
                self.batches.append((views[start : start + batch_size].clone(), fill[start : start + batch_size]))
        self.views = sum(len(b) for b, _ in self.batches)

    def run(self) -> float:
        """Seconds of model forward over every batch (inputs converted beforehand, untimed)."""
        import torch

        from biasprobe.invariance.views import views_to_input

        total = 0.0
        with torch.inference_mode():
            pixels, fill = self.batches[0]
            self.model(views_to_input(self.runtime.to_input(pixels), fill, self.model.preprocessing))  # warm-up
            for pixels, fill in self.batches:
                x = views_to_input(self.runtime.to_input(pixels), fill, self.model.preprocessing)
                start = time.perf_counter()
                self.model(x)
                total += time.perf_counter() - start
        return total


def _stack_bucket(frame) -> str:  # type: ignore[no-untyped-def]
    stack = []
    while frame is not None:
        stack.append((frame.f_code.co_filename, frame.f_code.co_name))
        frame = frame.f_back
    for bucket, rules in BUCKETS:
        for suffix, function in rules:
            for filename, name in stack:
                if (filename.endswith(suffix) or (suffix.endswith("/") and suffix in filename)) and function in (None, name):
                    return bucket
    return "other"


def profile_child(argv: list[str], interval: float) -> None:
    """Run the CLI in this process with a sampler thread; print the bucket seconds as JSON."""
    began = time.time()
    main_id = threading.get_ident()
    counts: Counter[str] = Counter()
    stop = threading.Event()

    def sample() -> None:
        last = time.perf_counter()
        while not stop.wait(interval):
            now = time.perf_counter()
            frame = sys._current_frames().get(main_id)
            counts[_stack_bucket(frame) if frame is not None else "other"] += now - last
            last = now

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from biasprobe.cli import main

    rc = main(argv)
    stop.set()
    sampler.join()
    if rc != 0:
        raise SystemExit(rc)
    print(json.dumps({"began": began, "ended": time.time(), "buckets": dict(counts)}))


def profile(photos: Path, out: Path, cmd: list[str], env: dict[str, str], bare: float, interval: float) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    launched = time.time()
    done = subprocess.run([sys.executable, __file__, "--profile-child", str(interval), "--", *cmd[2:]], env=env,
                          capture_output=True, text=True)  # fmt: skip
    exited = time.time()
    if done.returncode != 0:
        raise SystemExit(f"the profiled command failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    buckets = {"interpreter start-up": data["began"] - launched, **data["buckets"],
               "interpreter exit": exited - data["ended"]}  # fmt: skip
    total = exited - launched
    print(f"\nprofile of one command run under the sampler ({total:.1f} s wall; forward alone {bare:.1f} s when timed bare):")
    for name, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<34} {seconds:6.2f} s  {100 * seconds / total:5.1f}%")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-X", "importtime", *cmd], env=env, capture_output=True, text=True)
    tops = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):  # a top-level import
            tops.append((int(cumulative) / 1e6, name.strip()))
    print(f"slowest top-level imports of the command (python -X importtime, {sum(t for t, _ in tops):.2f} s in all):")
    for seconds, name in sorted(tops, reverse=True)[:12]:
        print(f"  {name:<40} {seconds:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=4, help="copies of the nine bundled photos (default 4: 36 photos)")
    parser.add_argument("--protocol", default="crop,black")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="command and bare forward, alternated")
    parser.add_argument("--compare", metavar="CHECKOUT", default=None,
                        help="also time the command of another checkout (e.g. the commit before), in the same rounds")
    parser.add_argument("--profile", action="store_true", help="also profile one command run, and its imports")
    parser.add_argument("--interval", type=float, default=0.005, help="sampling interval of --profile (s)")
    parser.add_argument("--profile-child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child is not None:
        profile_child(args.rest, args.profile_child)
        return

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    other = dict(os.environ, PYTHONPATH=str(Path(args.compare).resolve())) if args.compare else None
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = Path(tmp)
        photos = photo_folder(root, args.copies)
        out = root / "out"
        cmd = command(photos, out, args.protocol, args.batch_size)
        bare = BareForward(photos, args.protocol, args.batch_size)
        n_photos = len(list(photos.iterdir()))
        print(f"{MODEL}, {n_photos} photos (the 9 bundled x {args.copies}), protocols {args.protocol}, {bare.views} views, "
              f"batch {args.batch_size}, {bare.runtime.threads} threads, {len(os.sched_getaffinity(0))} cores")  # fmt: skip
        walls, forwards, others = [], [], []
        for r in range(args.rounds):
            if other is not None:
                others.append(time_command(cmd, out, other))
            walls.append(time_command(cmd, out, env))
            forwards.append(bare.run())
            before = f", {args.compare}: command {others[-1]:6.2f} s (ratio {forwards[-1] / others[-1]:.2f})" if others else ""
            print(f"  round {r + 1}: command {walls[-1]:6.2f} s, bare forward {forwards[-1]:6.2f} s, "
                  f"ratio {forwards[-1] / walls[-1]:.2f}{before}")  # fmt: skip
        wall, forward = statistics.median(walls), statistics.median(forwards)
        if others:
            print(f"median, {args.compare}: command {statistics.median(others):.2f} s, "
                  f"ratio {forward / statistics.median(others):.2f}")  # fmt: skip
        ratio = forward / wall
        print(f"median: command {wall:.2f} s, bare forward {forward:.2f} s ({bare.views / forward:.0f} views/s): "
              f"ratio {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
              f"outside the forward {wall - forward:.2f} s = {100 * (wall - forward) / wall:.0f}% of the run")  # fmt: skip
        print(f"load average now {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} cores: with other work on the "
              "machine, runs differ more than the overhead; trust the profile's in-run shares then")  # fmt: skip
        if args.profile:
            profile(photos, out, cmd, env, forward, args.interval)


if __name__ == "__main__":
    main()
