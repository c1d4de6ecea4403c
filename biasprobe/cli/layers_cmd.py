"""``biasprobe layers``: where in the network a 1-pixel step starts to change the representation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from biasprobe.cli.common import LazyHelp, add_data_flags, add_model_flags, add_runtime_flags, positive_int

NAME = "layers"
HELP = "find where in the network invariance is lost: per probe point, how much a 1-pixel step changes the features"
DESCRIPTION = (HELP + ". Probe points are found automatically (the last output at each resolution, then the "
               "embedding); one row per image, protocol and probe point.")  # fmt: skip


def _protocols_help() -> str:
    from biasprobe.invariance.catalogue import list_protocols  # torch-free

    names = [p.name for p in list_protocols(presets=True) if not p.paired]
    return "comma-separated sequence protocols: " + ", ".join(names)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_flags(p)
    p.add_argument("--images", required=True, metavar="SOURCE", help="images to measure: a folder, a .csv manifest or builtin:photos")
    p.add_argument("--protocol", required=True, metavar="LIST", action=LazyHelp, help_text=_protocols_help)
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="per image x protocol x probe table; companions go beside it")
    p.add_argument("--scores", metavar="FILE", default=None,
                   help="output of 'biasprobe score' for these images: adds typical and atypical halves to the summary")  # fmt: skip
    p.add_argument("--max-shift", type=positive_int, default=None, metavar="M",
                   help="views per image minus one (default: the model's, 32 at 224 px)")  # fmt: skip
    p.add_argument("--embed-size", type=positive_int, default=None, metavar="E",
                   help="longer side of the pasted image for black/inpaint/scale (default: 0.75 x input size)")  # fmt: skip
    add_runtime_flags(p)
    add_data_flags(p)


def _figure(entry: dict[str, Any], key: str) -> str:
    value = entry[key]["value"] if isinstance(entry[key], dict) else entry[key]
    return "n/a" if value is None else f"{value:.2e}"


def print_table(protocols: dict[str, list[dict[str, Any]]]) -> None:
    """Per protocol and probe: stride, channels, mean change_1 and change_aligned, spread, instability."""
    print(f"{'protocol':<9} {'probe':<28} {'stride':>6} {'chan':>5} {'change_1':>9} {'aligned':>9} {'spread':>9} {'instab.':>9}")
    for name, entries in protocols.items():
        for e in entries:
            probe = e["probe"] if len(e["probe"]) <= 28 else "..." + e["probe"][-25:]
            print(f"{name:<9} {probe:<28} {e['stride']:>6} {e['channels']:>5} {_figure(e, 'change_1'):>9} "
                  f"{_figure(e, 'change_aligned'):>9} {_figure(e, 'spread'):>9} {_figure(e, 'instability'):>9}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from biasprobe.cli.preamble import model_from_args, runtime_from_args, source_from_args
    from biasprobe.core.io import companion, read_table
    from biasprobe.core.outputs import check_output_path
    from biasprobe.invariance.protocols import ProtocolParams
    from biasprobe.layers.run import run_layers, sequence_protocols

    check_output_path(args.out, "table")
    protocols = sequence_protocols(args.protocol)
    halves = None
    if args.scores:
        from biasprobe.analysis import assign_halves

        halves = assign_halves(read_table(args.scores))
    runtime = runtime_from_args(args)
    model = model_from_args(args)
    params = ProtocolParams.for_model(model.preprocessing, max_shift=args.max_shift, embed_size=args.embed_size,
                                      run_seed=args.seed)  # fmt: skip
    for protocol in protocols:
        protocol.check(params)
    source = source_from_args(args, model)
    out = Path(args.out)
    result = run_layers(model, source, out, protocols=[p.name for p in protocols], params=params, runtime=runtime,
                        batch_size=args.batch_size, seed=args.seed, halves=halves, command=args.argv)  # fmt: skip
    print_table(result.summary.protocols)
    print(f"wrote {out} ({len(result.table)} rows), {companion(out, 'summary').name}, "
          f"{companion(out, 'skipped').name} ({len(result.skipped)} skipped)")  # fmt: skip
    return 0
