"""``biasprobe report``: relate invariance to typicality in an HTML bias report."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "correlate invariance with atypicality and write a self-contained HTML bias report"
DESCRIPTION = HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", metavar="FILE", default=None,
                   help="output of 'biasprobe score' (without it: an invariance-only report, no atypicality sections)")
    p.add_argument("--invariance", required=True, nargs="+", metavar="FILE",
                   help="output(s) of 'biasprobe invariance', one per model (baseline first) to compare fixes")
    p.add_argument("--layers", nargs="+", default=[], metavar="FILE",
                   help="output(s) of 'biasprobe layers', one per model: where in the network invariance is lost")
    p.add_argument("--positions", nargs="+", default=[], metavar="FILE",
                   help="output(s) of 'biasprobe positions', one per model (baseline first): maps over the frame")
    p.add_argument("--models", nargs="+", default=[], metavar="FILE",
                   help="output(s) of 'biasprobe invariance' of two or more models on the same images: accuracy, "
                   "P(top-1 change) and consistency side by side")
    p.add_argument("--factors", metavar="FILE|imagenet-x", default=None,
                   help="human factor annotations joined by file name: a CSV or JSONL with file_name and 0/1 factor "
                        "columns, or imagenet-x for the annotations of the imagenet-x package (the imagenetx extra; "
                        "CC BY-NC 4.0): per factor P(top-1 change) and atypicality, and the AUC of atypicality for "
                        "pose and size factors")
    p.add_argument("--index", metavar="DIR", default=None, help="index folder (meta.json and training boxes)")
    p.add_argument("--boxes-train", metavar="FILE", default=None, help="training boxes (Pascal VOC XML or CSV)")
    p.add_argument("--boxes-test", metavar="FILE", default=None, help="test boxes (Pascal VOC XML or CSV)")
    p.add_argument("--images", metavar="SOURCE", default=None,
                   help="where the tables' images are, for thumbnails: the --images given to score and invariance "
                   "(a folder, a .csv manifest or builtin:photos; default: what the tables recorded)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutations (default: 0)")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the report to write: one self-contained HTML file")


def run(args: argparse.Namespace) -> int:
    from biasprobe.core.outputs import check_output_path
    from biasprobe.report import write_report

    check_output_path(args.out, "file")
    if len(args.models) == 1:
        from biasprobe.core.errors import InputError

        raise InputError("--models compares the invariance tables of at least two models, got 1")
    out = write_report(
        args.scores,
        args.invariance,
        out=args.out,
        index=args.index,
        boxes_train=args.boxes_train,
        boxes_test=args.boxes_test,
        images_root=args.images,
        positions=args.positions,
        title=args.title,
        seed=args.seed,
        command=["biasprobe", *getattr(args, "argv", [])],
        layers=args.layers,
        models=args.models,
        factors=args.factors,
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
