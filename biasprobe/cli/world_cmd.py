"""``biasprobe world``: write the built-in photographer's-bias world to disk."""

from __future__ import annotations

import argparse

from ..errors import NotBuiltError

NAME = "world"
HELP = "write the built-in photographer's-bias world (digits at typical positions) to disk"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (train/, test/, boxes.csv, world.json)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    raise NotBuiltError("'biasprobe world' is not built yet in this version")
