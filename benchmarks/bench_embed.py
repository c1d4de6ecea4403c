"""Embed stage: pipeline throughput against serial decode + forward, and memory flat in N.

1. Throughput (one process, same images): decode + prepare every image serially, then run
   the forward passes serially on the prepared tensors, then run the real pipeline
   (``embed_to_shards``: a decoding worker overlapping the forward). Target: pipeline rate
   >= 0.9 x 1 / (decode time + forward time), i.e. the ratio printed >= 0.9.
2. Memory: peak RSS of ``embed_to_shards`` on 2k and 20k images, each in a fresh
   subprocess (main process and its decoding worker). Target: 20k <= 1.2 x 2k.

Images: JPEG crops of the bundled photos (distinct bytes), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from biasprobe.data.sources import bundled_photo_paths, open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index.embed import _forward, _prepare_uint8
from biasprobe.index.shards import embed_to_shards
from biasprobe.models import create_model

CHILD = """
import json, resource, sys, time
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index.shards import embed_to_shards
from biasprobe.models import create_model
folder, out, n, model_name, weights = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
runtime = Runtime.create(threads=None)
model = runtime.prepare(create_model(model_name, weights=weights or None))
records = open_source(folder, limit=n).records
started = time.perf_counter()
embed_to_shards(records, model, runtime, out, batch_size=64, show_progress=False)
seconds = time.perf_counter() - started
print(json.dumps({"images": len(records), "seconds": seconds,
                  "main_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def write_images(folder: Path, n: int, *, seed: int = 0) -> None:
    """n JPEGs: random crops (about 200-300 px) of the bundled photos, each with distinct bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [Image.open(p).convert("RGB") for p in bundled_photo_paths().values()]
    rng = random.Random(seed)
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = rng.randint(200, 300), rng.randint(200, 300)
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        img.crop((x, y, x + w, y + h)).save(folder / f"{i:06d}.jpg", quality=85)


def throughput(folder: Path, n: int, model_name: str, batch_size: int, rounds: int) -> dict[str, float]:
    """Best of ``rounds`` for each of decode, forward and pipeline (the machine is shared)."""
    runtime = Runtime.create()
    model = runtime.prepare(create_model(model_name))
    records = open_source(folder, limit=n).records
    prep = model.preprocessing
    prepare = functools.partial(_prepare_uint8, input_size=prep.input_size, crop_pct=prep.crop_pct)
    first, _ = records[0].load()
    _forward(model, runtime, [prepare(first, records[0], "")] * batch_size)  # warm-up
    best = {"decode": float("inf"), "forward": float("inf"), "pipeline": float("inf")}
    for _round in range(rounds):
        started = time.perf_counter()
        tensors = []
        for record in records:
            image, image_id = record.load()
            tensors.append(prepare(image, record, image_id))
        best["decode"] = min(best["decode"], time.perf_counter() - started)

        started = time.perf_counter()
        for lo in range(0, len(tensors), batch_size):
            _forward(model, runtime, tensors[lo : lo + batch_size])
        best["forward"] = min(best["forward"], time.perf_counter() - started)
        del tensors

        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            embed_to_shards(records, model, runtime, out, batch_size=batch_size, show_progress=False)
            best["pipeline"] = min(best["pipeline"], time.perf_counter() - started)
    return {"images": len(records), **best}


def peak_memory(folder: Path, n: int, model_name: str, weights: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", CHILD, str(folder), out, str(n), model_name, weights],
                              check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--throughput-images", type=int, default=1024)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds; the best of each is kept")
    parser.add_argument("--memory-model", default=None, help="model for the memory runs (default: --model)")
    parser.add_argument("--memory-weights", default="", help="weights file for --memory-model")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        n_images = args.throughput_images if args.skip_memory else max(args.large, args.throughput_images)
        started = time.perf_counter()
        write_images(folder, n_images)
        print(f"wrote {n_images} JPEGs in {time.perf_counter() - started:.0f} s; model {args.model}, "
              f"{torch.get_num_threads()} threads")
        if not args.skip_throughput:
            t = throughput(folder, args.throughput_images, args.model, args.batch_size, args.rounds)
            serial = t["decode"] + t["forward"]
            print(f"throughput on {t['images']} images (best of {args.rounds}): decode {t['decode']:.1f} s + "
                  f"forward {t['forward']:.1f} s = {serial:.1f} s serial; pipeline {t['pipeline']:.1f} s "
                  f"({t['images'] / t['pipeline']:.0f} img/s)")
            print(f"  pipeline rate / (1 / (decode + forward)) = {serial / t['pipeline']:.2f} (target >= 0.9)", flush=True)
        if args.skip_memory:
            return
        memory_model = args.memory_model or args.model
        small = peak_memory(folder, args.small, memory_model, args.memory_weights)
        large = peak_memory(folder, args.large, memory_model, args.memory_weights)
        print(f"memory runs with {memory_model}")
        for r in (small, large):
            print(f"peak RSS embedding {r['images']} images ({r['seconds']:.0f} s): main {r['main_kb'] / 1024:.0f} MB, "
                  f"decoding worker {r['worker_kb'] / 1024:.0f} MB")
        total = [(r["main_kb"] + r["worker_kb"]) for r in (small, large)]
        print(f"  peak memory ratio {args.large} / {args.small} images: main {large['main_kb'] / small['main_kb']:.3f}, "
              f"main + worker {total[1] / total[0]:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
