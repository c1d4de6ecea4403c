"""``biasprobe score``: score images for typicality against an index."""

from __future__ import annotations

import argparse

from ..errors import NotBuiltError

NAME = "score"
HELP = "score images by nearest-neighbour distance to the training set (typicality)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--images", required=True, metavar="DIR")
    p.add_argument("--out", required=True, metavar="FILE.parquet")


def run(args: argparse.Namespace) -> int:
    raise NotBuiltError("'biasprobe score' is not built yet in this version")
