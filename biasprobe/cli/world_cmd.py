"""``biasprobe world``: write the built-in photographer's-bias world to disk."""

from __future__ import annotations

import argparse

from biasprobe.cli.common import positive_int

NAME = "world"
HELP = "write the built-in photographer's-bias world (digits at typical positions) to disk"
DESCRIPTION = HELP + ". Every setting is recorded in DIR/world.json."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from biasprobe.world.config import WorldConfig

    d = WorldConfig()
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (train/, test/, each with boxes.csv; world.json)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    p.add_argument("--overwrite", action="store_true", help="replace a world already in DIR")
    g = p.add_argument_group("world settings")
    g.add_argument("--digits", type=positive_int, default=None, metavar="N", help="use N of the 1,797 digits (default: all)")
    g.add_argument("--test-fraction", type=float, default=d.test_fraction, metavar="F", help=f"share of digits held out for test (default: {d.test_fraction})")
    g.add_argument("--train-placements", type=positive_int, default=d.train_placements, metavar="N", help=f"placements per training digit (default: {d.train_placements})")
    g.add_argument("--test-placements", type=positive_int, default=d.test_placements, metavar="N", help=f"placements per test digit (default: {d.test_placements})")
    g.add_argument("--train-offset-std", type=float, default=d.train_offset_std, metavar="PX", help=f"std of training offsets per axis, pixels (default: {d.train_offset_std})")
    g.add_argument("--train-offset-clip", type=float, default=d.train_offset_clip, metavar="PX", help=f"training offsets clipped to +-PX (default: {d.train_offset_clip})")
    g.add_argument("--train-scale-std", type=float, default=d.train_scale_std, metavar="S", help=f"std of training scales around 1 (default: {d.train_scale_std})")
    g.add_argument("--test-offset-max", type=float, default=d.test_offset_max, metavar="PX", help=f"test offsets uniform in +-PX (default: {d.test_offset_max})")
    g.add_argument("--test-scale-min", type=float, default=d.test_scale_min, metavar="S", help=f"smallest test scale (default: {d.test_scale_min})")
    g.add_argument("--test-scale-max", type=float, default=d.test_scale_max, metavar="S", help=f"largest test scale (default: {d.test_scale_max})")


def run(args: argparse.Namespace) -> int:
    from biasprobe.core.outputs import check_output_path
    from biasprobe.world.config import WorldConfig
    from biasprobe.world.generate import make_world

    check_output_path(args.out, "folder")
    config = WorldConfig(
        seed=args.seed, digits=args.digits, test_fraction=args.test_fraction,
        train_placements=args.train_placements, test_placements=args.test_placements,
        train_offset_std=args.train_offset_std, train_offset_clip=args.train_offset_clip,
        train_scale_std=args.train_scale_std, test_offset_max=args.test_offset_max,
        test_scale_min=args.test_scale_min, test_scale_max=args.test_scale_max,
    )
    info = make_world(args.out, config, overwrite=args.overwrite)
    print(f"world written to {info.root}: {info.n_train} train and {info.n_test} test images "
          f"({info.n_clipped} clipped), seed {config.seed}")
    print(f"next: biasprobe train --data {info.root} --arch world_vgg --out {info.root}/world_vgg.pt")
    return 0
