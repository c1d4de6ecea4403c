"""``biasprobe invariance``: measure how invariant a model is on a set of images."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from biasprobe.cli.common import (
    LazyHelp,
    add_data_flags,
    add_engine_flags,
    add_model_flags,
    add_runtime_flags,
    positive_int,
)

if TYPE_CHECKING:
    import pandas as pd

NAME = "invariance"
HELP = "measure top-1 changes under 1-pixel shifts and rescales, per image and protocol"
DESCRIPTION = HELP


def _protocols_help() -> str:
    from biasprobe.invariance.catalogue import list_protocols  # torch-free

    own = [p.name for p in list_protocols()]
    presets = [p.name for p in list_protocols(presets=True) if p.name not in own]
    return ("comma-separated: " + ", ".join(own) + "; presets that follow the papers' code (docs/literature.md): "
            + ", ".join(presets))


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_flags(p)
    p.add_argument("--images", required=True, metavar="SOURCE", help="images to measure: a folder, a .csv manifest or builtin:photos")
    p.add_argument("--protocol", required=True, metavar="LIST", action=LazyHelp, help_text=_protocols_help)
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="per-image table; companions go beside it")
    p.add_argument("--max-shift", type=positive_int, default=None, metavar="M",
                   help="views per image minus one (default: the model's, 32 at 224 px)")  # fmt: skip
    p.add_argument("--embed-size", type=positive_int, default=None, metavar="E",
                   help="longer side of the pasted image for black/inpaint/scale (default: 0.75 x input size)")  # fmt: skip
    p.add_argument("--pairs-per-image", type=positive_int, default=5, metavar="P", help="zhang and zhang2019 pairs per image (default: 5, the original's --epochs-shift)")
    p.add_argument("--index", metavar="DIR", default=None, help="training index built by the same model: adds each view's knn_dist")
    p.add_argument("--k", type=positive_int, default=10, help="neighbours for knn_dist (default: 10)")
    p.add_argument("--boxes", metavar="FILE", default=None, help="object boxes (Pascal VOC XML, CSV, or a Kaggle LOC_*_solution.csv), kept with the images")
    add_runtime_flags(p)
    add_engine_flags(p)
    add_data_flags(p)


def _with_ci(figures: dict, key: str) -> str:
    if figures[key] is None:
        return "n/a"
    lo, hi = figures[f"{key}_ci"]
    return f"{figures[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def _print_table(protocols: dict, images: pd.DataFrame, views: pd.DataFrame) -> None:
    """The summary's figures per protocol, with a flag and a warning line under the table for
    protocols whose predictions are (nearly) constant (docs/protocols.md section 3.4)."""
    from biasprobe.analysis import prediction_spread

    spread = {s.protocol: s for s in prediction_spread(images, views)}
    width = max(10, *(len(name) for name in protocols))
    print(f"{'protocol':<{width}} {'n':>5} {'P(top-1 change)':>24} {'MAC':>24} {'consistency':>24} {'accuracy':>9}  "
          "definition  note")  # fmt: skip
    for name, s in protocols.items():
        accuracy = f"{s['accuracy']:.3f}" if s["accuracy"] is not None else "n/a"
        note = "CONSTANT PREDICTIONS" if name in spread and spread[name].constant else ""
        definition = s.get("definition") or ""
        print(f"{name:<{width}} {s['n']:>5} {_with_ci(s, 'p_change'):>24} {_with_ci(s, 'mac'):>24} "
              f"{_with_ci(s, 'consistency'):>24} {accuracy:>9}  {definition:<10}  {note}".rstrip())  # fmt: skip
    for flagged in (s for s in spread.values() if s.constant):
        print(f"warning: {flagged.warning()}")


def run(args: argparse.Namespace) -> int:
    from biasprobe.cli.preamble import engine_from_args, model_from_args, runtime_from_args, source_from_args
    from biasprobe.core.io import companion
    from biasprobe.core.outputs import check_output_path
    from biasprobe.invariance.catalogue import ProtocolParams, parse_protocols
    from biasprobe.invariance.run import run_invariance

    check_output_path(args.out, "table")
    engine = engine_from_args(args)
    protocols = parse_protocols(args.protocol)
    runtime = runtime_from_args(args)
    model = model_from_args(args)
    params = ProtocolParams.for_model(model.preprocessing, max_shift=args.max_shift, embed_size=args.embed_size,
                                      pairs_per_image=args.pairs_per_image, run_seed=args.seed)  # fmt: skip
    for protocol in protocols:
        protocol.check(params)  # a clear error before any work
    source = source_from_args(args, model)
    index = None
    if args.index:
        from biasprobe.index.training_index import TrainingIndex, search_device

        index = TrainingIndex.open(args.index, device=search_device(runtime.device))
    out = Path(args.out)
    result = run_invariance(model, source, out, protocols=[p.name for p in protocols], params=params, runtime=runtime,
                            batch_size=args.batch_size, index=index, k=args.k, seed=args.seed, command=args.argv,
                            engine=engine)  # fmt: skip
    _print_table(result.summary.protocols, result.images, result.views)
    print(f"wrote {out} ({len(result.images)} rows), {companion(out, 'views').name}, "
          f"{companion(out, 'summary').name}, {companion(out, 'skipped').name} ({len(result.skipped)} skipped)")  # fmt: skip
    return 0
