"""Positions stage speed as a ratio measured in one run (EfficientNet-Lite0, bundled photos).

Target (issue 12): views/s of the whole ``biasprobe positions`` stage (decode, cut the object,
paste it at every position, batch, forward, rows, summary) >= 0.8 x the bare model forward on
pre-made normalised tensors, the same number of views in batches of the same size. The two
are timed in turn ``--rounds`` times and the best of each is compared, so a burst of load on a
shared machine does not decide the ratio (every round is printed).
"""

from __future__ import annotations

import argparse
import time

import torch


def _bare_forward(model, views: int, batch: int) -> float:
    """Views per second of the model alone on a pre-made normalised batch (channels_last)."""
    x = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    done = 0
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        while done < views:
            n = min(batch, views - done)
            model(x[:n])
            done += n
    return views / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", type=int, default=8, help="grid step in pixels (default 8: 64 to 120 views a photo)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="bare forward and stage timed in turn this many times")
    args = parser.parse_args()

    from biasprobe.data.sources import open_source
    from biasprobe.engine.runtime import Runtime
    from biasprobe.models import create_model
    from biasprobe.positions import measure_positions

    runtime = Runtime.create(device="cpu", threads=args.threads)
    model = runtime.prepare(create_model("efficientnet_lite0"))
    source = open_source("builtin:photos")
    warm = measure_positions(model, source, step=args.step, runtime=runtime, batch_size=args.batch_size,
                             progress=False)  # fmt: skip  # also counts the views
    views = len(warm.table)
    bare, stage = [], []
    for _ in range(args.rounds):
        bare.append(_bare_forward(model, views, args.batch_size))
        start = time.perf_counter()
        measure_positions(model, source, step=args.step, runtime=runtime, batch_size=args.batch_size, progress=False)
        stage.append(views / (time.perf_counter() - start))
        print(f"round {len(stage)}: bare forward {bare[-1]:.1f} views/s, positions stage {stage[-1]:.1f} views/s", flush=True)
    print(f"threads {runtime.threads}, batch {args.batch_size}, step {args.step}: {views} views of {len(source)} photos")
    print(f"best of {args.rounds}: bare forward {max(bare):.1f} views/s, positions stage {max(stage):.1f} views/s")
    print(f"ratio stage / bare forward: {max(stage) / max(bare):.2f} (target >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
