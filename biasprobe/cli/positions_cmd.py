"""``biasprobe positions``: the object moved over the whole frame, the model's answer at every position."""

from __future__ import annotations

import argparse
from pathlib import Path

from biasprobe.cli.common import add_data_flags, add_model_flags, add_runtime_flags, positive_int

NAME = "positions"
HELP = "move each image's object over the whole frame: accuracy and instability by position, beside the training objects' density"
DESCRIPTION = HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_flags(p)
    p.add_argument("--images", required=True, metavar="SOURCE", help="images to measure: a folder, a .csv manifest or builtin:photos")
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="one row per image and position; companions go beside it")
    p.add_argument("--boxes", metavar="FILE", default=None,
                   help="object boxes (Pascal VOC XML, CSV, or a Kaggle LOC_*_solution.csv): the object is the largest box (default: the whole image)")  # fmt: skip
    p.add_argument("--index", metavar="DIR", default=None,
                   help="training index with boxes: the training objects' density and its correlations")  # fmt: skip
    p.add_argument("--boxes-train", metavar="FILE", default=None,
                   help="training boxes (Pascal VOC XML or CSV) for the density, instead of the index's")  # fmt: skip
    p.add_argument("--step", type=positive_int, default=None, metavar="PX",
                   help="grid step in pixels (default: 1, or the smallest step keeping at most 48 positions per axis)")  # fmt: skip
    p.add_argument("--embed-size", type=positive_int, default=None, metavar="E",
                   help="longer side of a whole image, and the most an object may measure (default: 0.75 x input size)")  # fmt: skip
    add_runtime_flags(p)
    add_data_flags(p)


def _fmt(value: float | None, ci: list | None = None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def run(args: argparse.Namespace) -> int:
    from biasprobe.cli.preamble import model_from_args, runtime_from_args, source_from_args
    from biasprobe.core.io import companion
    from biasprobe.core.outputs import check_output_path
    from biasprobe.positions.maps import TrainingCentres, training_centres_from_index
    from biasprobe.positions.run import run_positions

    check_output_path(args.out, "table")
    runtime = runtime_from_args(args)
    model = model_from_args(args)
    prep = model.preprocessing
    source = source_from_args(args, model)
    training = None
    if args.boxes_train:
        from biasprobe.data.boxes import read_boxes

        table = read_boxes(args.boxes_train)
        boxes = table.boxes()
        training = TrainingCentres.from_boxes(boxes, resize_size=prep.resize_size, canvas=prep.input_size,
                                              bandwidth=None, source=str(args.boxes_train))  # fmt: skip
    elif args.index:
        training = training_centres_from_index(args.index, resize_size=prep.resize_size, canvas=prep.input_size)
    out = Path(args.out)
    result = run_positions(model, source, out, step=args.step, embed_size=args.embed_size, training=training,
                           runtime=runtime, batch_size=args.batch_size, seed=args.seed, command=args.argv)  # fmt: skip
    f = result.summary.positions
    print(f"images {f['n']}, positions {f['positions']}, map {f['grid'][0]} x {f['grid'][1]} cells of {f['cell']} px")
    print(f"accuracy {_fmt(f['accuracy'], f['accuracy_ci'])}; instability {_fmt(f['instability'], f['instability_ci'])}")
    if training is not None:
        print(f"Spearman rho, training density vs accuracy {_fmt(f['rho_density_accuracy'], f['rho_density_accuracy_ci'], 2)}; "
              f"vs instability {_fmt(f['rho_density_instability'], f['rho_density_instability_ci'], 2)}")  # fmt: skip
    else:
        print("no training boxes (--index with boxes, or --boxes-train): the density correlations are not computed")
    print(f"wrote {out} ({len(result.table)} rows), {companion(out, 'summary').name}, "
          f"{companion(out, 'skipped').name} ({len(result.skipped)} skipped)")  # fmt: skip
    return 0
