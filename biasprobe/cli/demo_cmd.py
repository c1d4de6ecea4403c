"""``biasprobe demo``: the whole pipeline on the built-in world and the bundled photos."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..models import create_model
from ..runtime import Runtime
from ..sources import BUILTIN_PHOTOS, open_source
from ..transforms import embed_view, normalise

NAME = "demo"
HELP = "run the whole pipeline on the built-in world and the bundled photos, ending in an HTML report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    p.add_argument("--out", default="reports/demo", metavar="DIR", help="output folder (default: reports/demo)")
    p.add_argument("--quick", action="store_true", help="fewer images and epochs (about 3 minutes)")


def run(args: argparse.Namespace) -> int:
    import torch

    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runtime = Runtime.create()
    model = runtime.prepare(create_model("efficientnet_lite0"))
    prep = model.preprocessing
    print(f"stage 1/1 (built): classify the bundled photos with {model.name}")
    for record in open_source(BUILTIN_PHOTOS):
        image, image_id = record.load()
        x = normalise(torch.from_numpy(embed_view(image, input_size=prep.input_size, crop_pct=prep.crop_pct)), prep.mean, prep.std)
        with torch.inference_mode():
            logits, _ = model(runtime.to_input(x[None]))
        p = logits.softmax(-1)[0]
        top = int(p.argmax())
        print(f"  {record.relative:<22} {image_id}  {model.class_names[top]} (p={float(p[top]):.2f})")
    print("not built yet: world, train, index build, score, invariance, report (later versions)")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0
