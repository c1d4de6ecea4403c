"""The ``biasprobe`` command line: one module per subcommand, each with add_parser() and run().

Exit status: 0 done, 1 a user-facing error (one clear line), 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from biasprobe import __version__
from biasprobe.core.errors import BiasprobeError

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order --help lists them (the command-line contract of docs/architecture.md).
COMMANDS = (
    "demo_cmd",
    "world_cmd",
    "train_cmd",
    "index_cmd",
    "score_cmd",
    "invariance_cmd",
    "report_cmd",
    "models_cmd",
)


def _command_modules() -> dict[str, object]:
    modules = {}
    for module_name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{module_name}")
        modules[module.NAME] = module
    return modules


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="biasprobe",
        description="Find out why an image classifier is not invariant to small shifts and rescales: "
        "measure invariance per image, score images against the training set, relate the two.",
    )
    parser.add_argument("--version", action="version", version=f"biasprobe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = _command_modules()
    for module in modules.values():
        module.add_parser(sub)  # type: ignore[attr-defined]
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(message)s" if not args.debug else "%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(modules[args.command].run(args) or 0)  # type: ignore[attr-defined]
    except BiasprobeError as exc:
        if args.debug:
            raise
        print(f"biasprobe: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("biasprobe: interrupted; finished work is kept and a re-run resumes it", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
