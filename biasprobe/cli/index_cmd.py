"""``biasprobe index build``: embed a training set and build its FAISS index."""

from __future__ import annotations

import argparse

from ..errors import NotBuiltError
from .common import add_model_flags

NAME = "index"
HELP = "build a nearest-neighbour index of a training set's embeddings"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    actions = p.add_subparsers(dest="index_action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="embed images and build the index")
    b.add_argument("--images", required=True, metavar="DIR")
    add_model_flags(b)
    b.add_argument("--out", required=True, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    raise NotBuiltError("'biasprobe index build' is not built yet in this version")
