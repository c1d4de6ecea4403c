"""``biasprobe score``: score images for typicality against an index."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from biasprobe.cli.common import add_data_flags, add_engine_flags, add_runtime_flags, positive_int

if TYPE_CHECKING:
    from biasprobe.index.training_index import TrainingIndex
    from biasprobe.models import ProbeModel

NAME = "score"
HELP = "score images by nearest-neighbour distance to the training set (typicality)"
DESCRIPTION = HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", required=True, metavar="DIR", help="an index folder from 'biasprobe index build'")
    p.add_argument("--images", required=True, metavar="SOURCE", help="images to score: a folder, a .csv manifest or builtin:photos")
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="score table (companions .summary.json, .skipped.parquet beside it)")
    p.add_argument("--k", type=positive_int, default=10, help="neighbours for knn_dist (1..min(50, training images - 1); default: 10)")
    p.add_argument("--boxes", metavar="FILE", default=None, help="object boxes of the scored images (Pascal VOC XML, CSV, or a Kaggle LOC_*_solution.csv), for pose_atypicality")
    p.add_argument("--model", metavar="NAME", default=None, help="model (default: the index's)")
    p.add_argument("--weights", metavar="FILE", default=None, help="weights file (default: the index's)")
    add_runtime_flags(p)
    add_engine_flags(p)
    add_data_flags(p)


def _index_model(index: TrainingIndex, args: argparse.Namespace) -> ProbeModel:
    """The model to score with: the index's, or --model/--weights when they can be that model.

    A --model other than the index's is refused before any model is built, and a model that
    cannot be built is reported with how the index was built, so the message names the real cause.
    """
    from biasprobe.core.errors import IndexMismatchError, ModelError
    from biasprobe.models import ModelFactory

    meta = index.meta
    where = f"index {args.index} was built by {meta.built_by}"
    if args.model is not None and args.model != meta.model:
        raise IndexMismatchError(
            f"{where}, and --model asks to score with {args.model}: leave out --model and --weights to score "
            f"with the index's model, or build an index with {args.model} ('biasprobe index build --model {args.model}')"
        )
    factory = ModelFactory.for_recorded(meta.model, meta.weights_source, model=args.model, weights=args.weights)
    try:
        return factory.build()
    except ModelError as exc:
        if args.weights is not None:
            raise ModelError(
                f"{where}; --weights {args.weights} cannot be that model ({exc}): pass the weights the index was "
                "built with, or leave out --weights"
            ) from exc
        source = meta.weights_source
        if source and not Path(source).is_file() and factory.weights is None:
            why = ("is not there any more (moved, or the index was copied from another machine)" if Path(source).is_absolute()
                   else "is not found from here (its path is relative to the folder the build ran in)")
            raise ModelError(f"{where}, and that weights file {why}: pass --weights FILE with the same weights") from exc
        raise ModelError(f"{where}, and that model cannot be built here: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    from biasprobe.cli.preamble import engine_from_args, runtime_from_args, source_from_args
    from biasprobe.core.outputs import check_output_path
    from biasprobe.index.score import run_scores
    from biasprobe.index.training_index import TrainingIndex, search_device

    check_output_path(args.out, "table")
    engine = engine_from_args(args)
    runtime = runtime_from_args(args)
    index = TrainingIndex.open(args.index, device=search_device(runtime.device))
    index.reference_knn_dist(k=args.k)  # a bad --k fails before the model loads
    model = _index_model(index, args)
    source = source_from_args(args, model)
    result = run_scores(index, source, model, args.out, k=args.k, runtime=runtime, batch_size=args.batch_size,
                        command=["biasprobe", *args.argv], engine=engine)
    s = result.summary
    q = s.knn_dist_quantiles
    print(f"scored {s.images} images against {args.index} (k={args.k}): {s.in_train} in the training set, "
          f"{s.skipped} skipped; knn_dist median {q['0.5']:.4f} (min {q['0']:.4f}, max {q['1']:.4f}) -> {args.out}")
    return 0
