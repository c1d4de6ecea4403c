"""``biasprobe train``: train a small CNN of the built-in world."""

from __future__ import annotations

import argparse

from biasprobe.cli.common import positive_int

NAME = "train"
HELP = "train a built-in world CNN, optionally augmented or antialiased"
DESCRIPTION = HELP + ". The checkpoint loads with --model ARCH --weights FILE."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from biasprobe.world.choices import AUGMENTS, SCALE_RANGE, WORLD_ARCHS, WORLD_PREPROCESSING

    size, canvas = WORLD_PREPROCESSING.input_size, WORLD_PREPROCESSING.resize_size
    low, high = SCALE_RANGE
    p.add_argument("--data", required=True, metavar="DIR", help="a world folder written by 'biasprobe world'")
    p.add_argument("--arch", required=True, choices=WORLD_ARCHS, help="the world CNN to train (later: --model ARCH --weights FILE)")
    p.add_argument("--out", required=True, metavar="FILE", help="checkpoint to write")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help=f"crop: random {size}-pixel windows of the {canvas}-pixel canvas; "
                   f"scale: canvas rescaled by {low}-{high} about its centre")
    p.add_argument("--antialias", action="store_true", help="BlurPool before every stride (Zhang 2019)")
    p.add_argument("--epochs", type=positive_int, default=8, help="training epochs (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--width", type=positive_int, default=None, help="channels of the first stage (default: the architecture's, 16)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per training step (default: 64)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all usable cores)")


def run(args: argparse.Namespace) -> int:
    from biasprobe.core.outputs import check_output_path
    from biasprobe.world.train import train_world_model

    check_output_path(args.out, "file")
    result = train_world_model(
        args.data, arch=args.arch, out=args.out, augment=args.augment, antialias=args.antialias,
        epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, threads=args.threads, width=args.width,
    )
    test = "n/a" if result.test_accuracy is None else f"{result.test_accuracy:.3f}"
    print(f"{args.arch} trained in {result.seconds:.0f} s: train accuracy {result.train_accuracy:.3f}, "
          f"test accuracy {test}; checkpoint {result.path}")
    print(f"load it with: --model {args.arch} --weights {result.path}")
    return 0
