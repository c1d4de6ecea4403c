"""What a subcommand module provides, and the subparsers that add its flags only when it is chosen.

Flag choices come from the library's registries (protocols, world architectures, augmentations),
which import torch. Filling a subcommand's parser on demand keeps ``biasprobe --help`` and
``biasprobe --version`` free of those imports; ``biasprobe COMMAND ...`` pays them, as its run does.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Command", "LazySubcommands"]


class Command(Protocol):
    """A subcommand module (``demo_cmd``, ``score_cmd``, ...)."""

    NAME: str  # what users type
    HELP: str  # one line in ``biasprobe --help``
    DESCRIPTION: str  # the top of ``biasprobe NAME --help``

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's flags (imports what the choices need)."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; the exit status (0 done)."""


class LazySubcommands(argparse._SubParsersAction):
    """Subparsers whose flags are added when the command is chosen, before it parses the rest."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unfilled: dict[str, tuple[Command, argparse.ArgumentParser]] = {}

    def add_command(self, command: Command) -> None:
        parser = self.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        self._unfilled[command.NAME] = (command, parser)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values and not isinstance(values, str) and values[0] in self._unfilled:
            command, subparser = self._unfilled.pop(values[0])
            command.add_arguments(subparser)
        super().__call__(parser, namespace, values, option_string)
