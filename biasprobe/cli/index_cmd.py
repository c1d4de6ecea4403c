"""``biasprobe index build``: embed a training set and build its FAISS index."""

from __future__ import annotations

import argparse

from biasprobe.cli.common import (
    add_data_flags,
    add_engine_flags,
    add_model_flags,
    add_runtime_flags,
    positive_int,
)

NAME = "index"
HELP = "build a nearest-neighbour index of a training set's embeddings"
DESCRIPTION = HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="index_action", metavar="ACTION", required=True, help="what to do with an index")
    b = actions.add_parser(
        "build",
        help="embed images and build the index",
        description="Embed training images into numbered shards, build the FAISS index and the "
        "leave-one-out reference, fit the box density when boxes are given. An interrupted "
        "build resumes from its finished shards when re-run with the same arguments.",
    )
    b.add_argument("--images", required=True, metavar="SOURCE", help="training images: a folder, a .csv manifest or builtin:photos")
    add_model_flags(b)
    b.add_argument("--boxes", metavar="FILE", default=None, help="object boxes (Pascal VOC XML file/folder, CSV, or Kaggle's LOC_train_solution.csv) for the pose density")
    b.add_argument("--out", required=True, metavar="DIR", help="index folder to write")
    b.add_argument("--overwrite", action="store_true",
                   help="replace an index already in DIR (only its own files are removed; a folder holding anything else is refused)")
    b.add_argument("--factory", metavar="STRING", default=None,
                   help="FAISS factory string (default: Flat up to 200k vectors, then IVF chosen from N, dim and memory)")
    b.add_argument("--shard-size", type=positive_int, default=4096, metavar="N", help="images per embedding shard (default: 4096)")
    add_runtime_flags(b)
    add_engine_flags(b)
    add_data_flags(b)


def run(args: argparse.Namespace) -> int:
    from biasprobe.cli.preamble import engine_from_args, model_from_args, runtime_from_args, source_from_args
    from biasprobe.core.outputs import check_output_path
    from biasprobe.index.build import build_index
    from biasprobe.index.overwrite import clear_index_folder, prepare_index_folder

    check_output_path(args.out, "folder")
    engine = engine_from_args(args)
    prepare_index_folder(args.out, overwrite=args.overwrite)
    runtime = runtime_from_args(args)
    model = model_from_args(args)
    source = source_from_args(args, model)
    if args.overwrite:
        clear_index_folder(args.out)  # only now: a bad model or --images leaves the old index in place
    index = build_index(source, model, args.out, runtime=runtime, batch_size=args.batch_size, shard_size=args.shard_size,
                        factory=args.factory, seed=args.seed, command=["biasprobe", *args.argv], engine=engine)
    meta = index.meta
    boxes = meta.boxes
    print(f"index {args.out}: {index.count} images ({meta.distinct_images} distinct), dim {meta.dim}, "
          f"FAISS {meta.factory}, {meta.skipped} skipped, k up to {index.k_max}"
          + (f", box density over {boxes.count} boxes" if boxes is not None else ""))
    return 0
