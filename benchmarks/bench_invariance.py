"""Invariance engine speed, as ratios measured in one run (EfficientNet-Lite0, bundled photos).

Targets (issue 4):
- every protocol but inpaint: views/s of the whole stage >= 0.85 x the bare model forward on
  pre-made tensors of the same batch size;
- inpaint: the batched fill costs at most half the forward of the same views;
- >= 5x the throughput of the authors' released script (one image pair per forward pass,
  default PyTorch settings: no channels_last, glibc malloc untuned), run in a subprocess;
- the CPU settings that made the difference: bare forward under default settings,
  channels_last alone, malloc tuning alone, and both (each in its own subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch


def _model(channels_last: bool):
    from biasprobe.models import create_model

    model = create_model("efficientnet_lite0").eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _bare_forward(model, batch: int, reps: int, channels_last: bool) -> float:
    """Views per second of the model alone on a pre-made normalised batch."""
    x = torch.randn(batch, 3, 224, 224)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(reps):
            model(x)
    return batch * reps / (time.perf_counter() - start)


def _authors_script(pairs: int) -> float:
    """One image pair per forward pass (a batch of 2 views), default settings, views/s."""
    from biasprobe.data.sources import open_source
    from biasprobe.data.transforms import normalise
    from biasprobe.invariance.protocols import ProtocolParams, get_protocol

    model = _model(channels_last=False)
    prep = model.preprocessing
    params = ProtocolParams.for_model(prep)
    records = open_source("builtin:photos").records
    done, start = 0, None
    with torch.inference_mode():
        while done < pairs:
            for record in records:
                image, image_id = record.load()
                views = get_protocol("crop").build(image, image_id, params).pixels
                for s in range(params.max_shift):
                    x = normalise(views[s : s + 2].float() / 255, prep.mean, prep.std)
                    model(x)
                    if start is None:  # the first pass is warm-up
                        start = time.perf_counter()
                        continue
                    done += 1
                    if done >= pairs:
                        break
                if done >= pairs:
                    break
    return 2 * done / (time.perf_counter() - start)


def _child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.child == "authors":
        value = _authors_script(args.pairs)
    else:
        cl = args.child in ("channels_last", "tuned+channels_last")
        value = _bare_forward(_model(cl), args.batch_size, args.reps, cl)
    print(json.dumps({"views_per_s": value}))


def _run_child(mode: str, args: argparse.Namespace, *, tuned: bool) -> float:
    env = dict(os.environ)
    if not tuned:
        env["BIASPROBE_NO_MALLOC_TUNING"] = "1"
    cmd = [sys.executable, __file__, "--child", mode, "--threads", str(args.threads), "--batch-size",
           str(args.batch_size), "--reps", str(args.reps), "--pairs", str(args.pairs)]  # fmt: skip
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["views_per_s"])


def _stage(model, runtime, source, protocol: str, batch: int, min_views: int) -> tuple[float, int]:
    from dataclasses import replace

    from biasprobe.invariance import measure_invariance
    from biasprobe.invariance.protocols import ProtocolParams, get_protocol

    per_image = get_protocol(protocol).n_views(ProtocolParams.for_model(model.preprocessing))
    n = max(len(source.records), -(-min_views // per_image))  # zhang has 10 views an image, not 33
    source = replace(source, records=(source.records * (n // len(source.records) + 1))[:n])
    start = time.perf_counter()
    result = measure_invariance(model, source, protocols=[protocol], runtime=runtime, batch_size=batch, progress=False)
    elapsed = time.perf_counter() - start
    return len(result.views) / elapsed, len(result.views)


def _fill_vs_forward(model, runtime, source, batch: int, reps: int) -> tuple[float, float]:
    """Seconds per batch: the inpaint fill vs the forward of the same filled views."""
    from biasprobe.data.transforms import normalise
    from biasprobe.invariance.inpaint import inpaint_fill, mask_to_rects
    from biasprobe.invariance.protocols import ProtocolParams
    from biasprobe.invariance.views import prepare_views

    prep = model.preprocessing
    params = ProtocolParams.for_model(prep)
    blocks = []
    for record in source.records:
        image, image_id = record.load()
        blocks.append(prepare_views(image, record, image_id, protocols=("inpaint",), params=params))
        if sum(b.shape[0] for b in blocks) >= batch:
            break
    pixels = torch.cat(blocks)[:batch]
    x = pixels[:, :3].float() / 255
    rects = mask_to_rects(pixels[:, 3] > 0)
    with torch.inference_mode():
        filled = inpaint_fill(x, rects)
        inputs = runtime.to_input(normalise(filled, prep.mean, prep.std))
        model(inputs)
        fill_t = forward_t = 0.0
        for _ in range(reps):
            start = time.perf_counter()
            inpaint_fill(x, rects)
            fill_t += time.perf_counter() - start
            start = time.perf_counter()
            model(inputs)
            forward_t += time.perf_counter() - start
    return fill_t / reps, forward_t / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=18, help="images per protocol run (bundled photos, tiled)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=4, help="batches for the bare forward")
    parser.add_argument("--pairs", type=int, default=24, help="image pairs for the authors' script")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--protocols", default="crop,black,inpaint,scale,circular,zhang")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    from dataclasses import replace

    from biasprobe.data.sources import open_source
    from biasprobe.engine.runtime import Runtime

    runtime = Runtime.create(threads=args.threads)
    model = runtime.prepare(_model(channels_last=True))
    photos = open_source("builtin:photos")
    records = (photos.records * (args.images // len(photos.records) + 1))[: args.images]
    source = replace(photos, records=records)
    print(f"EfficientNet-Lite0, {args.threads} threads, batch {args.batch_size}, {args.images} images per protocol")
    bare = _bare_forward(model, args.batch_size, args.reps, True)
    print(f"bare forward on pre-made tensors: {bare:7.1f} views/s")
    crop_rate = None
    for name in args.protocols.split(","):
        rate, views = _stage(model, runtime, source, name, args.batch_size, args.images * 33)
        bare_now = _bare_forward(model, args.batch_size, 2, True)  # re-measured beside it (shared machine)
        ratio = rate / ((bare + bare_now) / 2)
        target = "" if name == "inpaint" else ("  (target >= 0.85: " + ("met" if ratio >= 0.85 else "NOT met") + ")")
        print(f"stage {name:<9} {views:5d} views {rate:7.1f} views/s = {ratio:.2f} x bare forward{target}")
        if name == "crop":
            crop_rate = rate
    fill, forward = _fill_vs_forward(model, runtime, source, args.batch_size, 2)
    print(f"inpaint fill {fill * 1000:.0f} ms vs forward {forward * 1000:.0f} ms per batch of {args.batch_size} "
          f"= {fill / forward:.2f} (target <= 0.5: {'met' if fill / forward <= 0.5 else 'NOT met'})")  # fmt: skip
    authors = _run_child("authors", args, tuned=False)
    print(f"authors' script (pairs, batch of 2, default settings): {authors:6.1f} views/s")
    if crop_rate is not None:
        print(f"stage crop vs authors' script: {crop_rate / authors:.1f}x (target >= 5x)")
    print("CPU settings, bare forward in a fresh process each (views/s):")
    settings = {}
    for label, mode, tuned in (("default PyTorch", "default", False), ("channels_last", "channels_last", False),
                               ("malloc tuned", "default", True), ("malloc tuned + channels_last", "tuned+channels_last", True)):  # fmt: skip
        settings[label] = _run_child(mode, args, tuned=tuned)
        print(f"  {label:<30} {settings[label]:7.1f}  ({settings[label] / settings['default PyTorch']:.1f}x)")


if __name__ == "__main__":
    main()
