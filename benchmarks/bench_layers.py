"""The layers stage against the invariance stage on the same images and protocols, as a ratio
measured in one run (EfficientNet-Lite0, bundled photos tiled).

Target (issue 11): the layers stage costs at most 1.3x the invariance stage (the hooks at the
probe points and their spatial means add little to the forward pass). The two stages run in
turn, ``--rounds`` times each, and the best time of each is compared, so a burst of load on a
shared machine does not decide the ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

TARGET = 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=9, help="images (bundled photos, tiled)")
    parser.add_argument("--protocols", default="crop,circular", help="sequence protocols, comma-separated")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each stage; the best time counts")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    from biasprobe.data.sources import open_source
    from biasprobe.engine.runtime import Runtime
    from biasprobe.invariance import measure_invariance
    from biasprobe.layers import measure_layers, model_probes
    from biasprobe.models import create_model

    runtime = Runtime.create(threads=args.threads)
    model = runtime.prepare(create_model("efficientnet_lite0"))
    photos = open_source("builtin:photos")
    source = replace(photos, records=(photos.records * (args.images // len(photos.records) + 1))[: args.images])
    protocols = args.protocols.split(",")
    probes = model_probes(model)
    print(f"EfficientNet-Lite0, {args.threads} threads, batch {args.batch_size}, {args.images} images, "
          f"protocols {args.protocols}; {len(probes)} probe points: "
          + ", ".join(f"{p.name} (stride {p.stride})" for p in probes))  # fmt: skip
    stages = {
        "invariance": lambda: measure_invariance(model, source, protocols=protocols, runtime=runtime,
                                                 batch_size=args.batch_size, progress=False),
        "layers": lambda: measure_layers(model, source, protocols=protocols, runtime=runtime,
                                         batch_size=args.batch_size, progress=False),
    }  # fmt: skip
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(args.rounds):
        for name, stage in stages.items():
            start = time.perf_counter()
            stage()
            best[name] = min(best[name], time.perf_counter() - start)
    views = args.images * len(protocols) * (model.preprocessing.max_shift + 1)
    for name, seconds in best.items():
        print(f"{name:<10} {seconds:6.2f} s  ({views / seconds:6.1f} views/s)")
    ratio = best["layers"] / best["invariance"]
    print(f"layers / invariance = {ratio:.2f} (target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
