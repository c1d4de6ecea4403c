"""``biasprobe report``: relate invariance to typicality in an HTML bias report."""

from __future__ import annotations

import argparse

from ..errors import NotBuiltError

NAME = "report"
HELP = "correlate invariance with atypicality and write a self-contained HTML bias report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    p.add_argument("--scores", required=True, metavar="FILE")
    p.add_argument("--invariance", required=True, nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="FILE.html")


def run(args: argparse.Namespace) -> int:
    raise NotBuiltError("'biasprobe report' is not built yet in this version")
