"""The ``biasprobe`` command line: one module per subcommand (see cli.command.Command).

Exit status: 0 done, 1 a user-facing error (one clear line), 2 bad usage.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from biasprobe import __version__
from biasprobe.cli import (
    demo_cmd,
    index_cmd,
    invariance_cmd,
    layers_cmd,
    models_cmd,
    positions_cmd,
    report_cmd,
    score_cmd,
    train_cmd,
    world_cmd,
)
from biasprobe.cli.command import Command, LazySubcommands
from biasprobe.cli.preamble import check_paths
from biasprobe.core.errors import BiasprobeError

__all__ = ["COMMANDS", "build_parser", "entry", "main"]

# Subcommands, in the order --help lists them (the command-line contract of docs/architecture.md).
COMMANDS: tuple[Command, ...] = (
    demo_cmd,
    world_cmd,
    train_cmd,
    index_cmd,
    score_cmd,
    invariance_cmd,
    layers_cmd,
    positions_cmd,
    report_cmd,
    models_cmd,
)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The parser (each subcommand's flags are added when it is chosen) and the commands by name."""
    parser = argparse.ArgumentParser(
        prog="biasprobe",
        description="Find out why an image classifier is not invariant to small shifts and rescales: "
        "measure invariance per image, score images against the training set, relate the two.",
    )
    parser.add_argument("--version", action="version", version=f"biasprobe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = cast(LazySubcommands, parser.add_subparsers(dest="command", metavar="COMMAND", action=LazySubcommands,
                                                      help="biasprobe COMMAND --help shows its flags"))
    for command in COMMANDS:
        sub.add_command(command)
    return parser, {command.NAME: command for command in COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
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
        check_paths(args)  # before any command imports torch: a mistyped path fails at once
        return commands[args.command].run(args)
    except BiasprobeError as exc:
        if args.debug:
            raise
        print(f"biasprobe: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("biasprobe: interrupted; finished work is kept and a re-run resumes it", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The ``biasprobe`` program: ``main``, then a quick exit once the work is done.

    The exit handlers run (Ray's shutdown, temporary folders, logging) and the output is flushed;
    then the process leaves without tearing the interpreter down. With torch and timm loaded that
    teardown took 1-1.5 s of every command (measured: 0.6 s after ``import torch`` alone) and does
    no work of ours, and a library thread met during it (an Arrow reader thread holding a Python
    object) has aborted a finished run. An exception out of ``main`` is a bug and leaves the
    normal way, with its traceback.
    """
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
