"""``biasprobe invariance``: measure how invariant a model is on a set of images."""

from __future__ import annotations

import argparse

from ..errors import NotBuiltError
from .common import add_model_flags

NAME = "invariance"
HELP = "measure top-1 changes under 1-pixel shifts and rescales, per image and protocol"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    add_model_flags(p)
    p.add_argument("--images", required=True, metavar="DIR")
    p.add_argument("--protocol", required=True, metavar="LIST")
    p.add_argument("--out", required=True, metavar="FILE.parquet")


def run(args: argparse.Namespace) -> int:
    raise NotBuiltError("'biasprobe invariance' is not built yet in this version")
