"""Flags shared by several subcommands, defined once.

Building a command's parser imports no torch (the choices come from torch-free modules, and a
help text that needs a registry is computed only when help is shown: ``LazyHelp``), so a
command can check its paths before the libraries load (``preamble.check_paths``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["LazyHelp", "add_data_flags", "add_engine_flags", "add_model_flags", "add_runtime_flags", "non_negative_float",
           "positive_float", "positive_int"]


class LazyHelp(argparse.Action):
    """A plain store action whose help text comes from ``help_text()`` when help is shown
    (``add_argument(..., action=LazyHelp, help_text=FUNCTION)``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, help_text: Callable[[], str], **kwargs: Any) -> None:
        self._help_text = help_text
        super().__init__(option_strings, dest, **kwargs)

    @property
    def help(self) -> str:
        return self._help_text()

    @help.setter
    def help(self, _value: str | None) -> None:
        """argparse sets it; the text always comes from ``help_text``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of 0 or more, got {text}")
    return value


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """--engine and the Ray engine's flags (engine.runner.Engine)."""
    from biasprobe.engine.choices import ENGINES

    group = parser.add_argument_group("engine (where the units of work run; docs/scale.md)")
    group.add_argument("--engine", default="local", choices=ENGINES,
                       help="local (default): this process; ray: long-lived Ray workers, one per GPU or CPU slice, each "
                            "loading the model once (needs the ray extra: pip install 'biasprobe-cnn[ray]')")
    group.add_argument("--ray-address", metavar="ADDR", default=None,
                       help="an existing Ray cluster (e.g. auto or ray://head:10001); default: start a local Ray instance")
    group.add_argument("--ray-temp", metavar="DIR", default=None,
                       help="the local Ray instance's temporary files (default: beside the work, or a short folder under "
                            "the system temp when that path is too long for Ray's sockets)")
    group.add_argument("--ray-workers", type=positive_int, default=None, metavar="N",
                       help="Ray workers (default: one per GPU, or one per CPU slice on a cluster without GPUs)")
    group.add_argument("--ray-cpus", type=positive_float, default=None, metavar="C",
                       help="CPUs each Ray worker reserves, also its torch threads (default: 1; a GPU worker: its share of the CPUs, for decoding)")
    group.add_argument("--ray-gpus", type=non_negative_float, default=None, metavar="G",
                       help="GPUs each Ray worker reserves (default: 1 when the cluster has GPUs, else 0)")
    group.add_argument("--ray-timeout", type=positive_float, default=None, metavar="S",
                       help="seconds to wait for the Ray workers to be scheduled before saying why not (default: 60)")


def add_runtime_flags(parser: argparse.ArgumentParser, *, batch_size: int = 64) -> None:
    """--device, --batch-size, --threads, --precision (choices: what Runtime.create accepts)."""
    from biasprobe.engine.choices import DEVICES, PRECISIONS

    group = parser.add_argument_group("runtime")
    group.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto = cuda if present)")
    group.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"images per forward pass (default: {batch_size})")
    group.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch and FAISS (default: all usable cores)")
    group.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fp32 (default: IEEE fp32 on every device, TF32 off on GPUs) or bf16, a faster screening mode that may move near-ties")


def add_model_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--model, --weights."""
    parser.add_argument("--model", required=required, metavar="NAME", help="model name (see 'biasprobe models')")
    parser.add_argument("--weights", metavar="FILE", default=None, help="weights file (torch state_dict, loaded with weights_only=True)")


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """--limit or --sample, --classes, --labels, --seed."""
    some = parser.add_mutually_exclusive_group()
    some.add_argument("--limit", type=positive_int, default=None, metavar="N",
                      help="use only the first N images in the source's order (a quick look; on an ImageFolder tree, the first classes only)")
    some.add_argument("--sample", type=positive_int, default=None, metavar="N",
                      help="use a random sample of N images drawn with --seed, in proportion to the labels when there are labels")
    parser.add_argument("--classes", metavar="FILE", default=None, help="map folder names (e.g. ImageNet wnids) to class indices and names")
    parser.add_argument("--labels", metavar="FILE", default=None,
                        help="labels by file name: Kaggle's LOC_val_solution.csv / LOC_train_solution.csv, or a CSV "
                             "file_name,label (a class index or a wnid); matched on the file name without suffix "
                             "(docs/imagenet.md)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
