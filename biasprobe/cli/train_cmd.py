"""``biasprobe train``: train a small CNN of the built-in world."""

from __future__ import annotations

import argparse

from ..errors import NotBuiltError

NAME = "train"
HELP = "train a built-in world CNN (world_vgg, world_resnet), optionally augmented or antialiased"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    p.add_argument("--data", required=True, metavar="DIR", help="a world folder written by 'biasprobe world'")
    p.add_argument("--arch", required=True, choices=["world_vgg", "world_resnet"])
    p.add_argument("--out", required=True, metavar="FILE", help="checkpoint to write")


def run(args: argparse.Namespace) -> int:
    raise NotBuiltError("'biasprobe train' is not built yet in this version")
