"""``biasprobe score``: score images for typicality against an index."""

from __future__ import annotations

import argparse

from biasprobe.cli.common import add_data_flags, add_runtime_flags, positive_int

NAME = "score"
HELP = "score images by nearest-neighbour distance to the training set (typicality)"
DESCRIPTION = HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", required=True, metavar="DIR", help="an index folder from 'biasprobe index build'")
    p.add_argument("--images", required=True, metavar="SOURCE", help="images to score: a folder, a .csv manifest or builtin:photos")
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="score table (companions .summary.json, .skipped.parquet beside it)")
    p.add_argument("--k", type=positive_int, default=10, help="neighbours for knn_dist (1..min(50, training images - 1); default: 10)")
    p.add_argument("--boxes", metavar="FILE", default=None, help="object boxes of the scored images, for pose_atypicality")
    p.add_argument("--model", metavar="NAME", default=None, help="model (default: the index's)")
    p.add_argument("--weights", metavar="FILE", default=None, help="weights file (default: the index's)")
    add_runtime_flags(p)
    add_data_flags(p)


def run(args: argparse.Namespace) -> int:
    from biasprobe.cli.preamble import runtime_from_args, source_from_args
    from biasprobe.index.score import score_images
    from biasprobe.index.training_index import TrainingIndex
    from biasprobe.models import ModelFactory

    index = TrainingIndex.open(args.index)
    index.reference_knn_dist(k=args.k)  # a bad --k fails before the model loads
    factory = ModelFactory.for_recorded(index.meta.model, index.meta.weights_source, model=args.model, weights=args.weights)
    runtime = runtime_from_args(args)
    model = factory.build()
    source = source_from_args(args, model)
    result = score_images(index, source, model, k=args.k, runtime=runtime, batch_size=args.batch_size, command=["biasprobe", *args.argv])
    result.write(args.out)
    s = result.summary
    q = s.knn_dist_quantiles
    print(f"scored {s.images} images against {args.index} (k={args.k}): {s.in_train} in the training set, "
          f"{s.skipped} skipped; knn_dist median {q['0.5']:.4f} (min {q['0']:.4f}, max {q['1']:.4f}) -> {args.out}")
    return 0
