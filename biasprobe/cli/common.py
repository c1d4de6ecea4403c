"""Flags shared by several subcommands, defined once."""

from __future__ import annotations

import argparse

__all__ = ["add_data_flags", "add_model_flags", "add_runtime_flags", "positive_int"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def add_runtime_flags(parser: argparse.ArgumentParser, *, batch_size: int = 64) -> None:
    """--device, --batch-size, --threads, --precision (choices: what Runtime.create accepts)."""
    from biasprobe.engine.runtime import DEVICES, PRECISIONS  # torch: only once a command is chosen

    group = parser.add_argument_group("runtime")
    group.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto = cuda if present)")
    group.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"images per forward pass (default: {batch_size})")
    group.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch and FAISS (default: all usable cores)")
    group.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fp32 (default) or bf16, a faster screening mode that may move near-ties")


def add_model_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--model, --weights."""
    parser.add_argument("--model", required=required, metavar="NAME", help="model name (see 'biasprobe models')")
    parser.add_argument("--weights", metavar="FILE", default=None, help="weights file (torch state_dict, loaded with weights_only=True)")


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """--limit or --sample, --classes, --seed."""
    some = parser.add_mutually_exclusive_group()
    some.add_argument("--limit", type=positive_int, default=None, metavar="N",
                      help="use only the first N images in the source's order (a quick look; one class of an ImageFolder tree)")
    some.add_argument("--sample", type=positive_int, default=None, metavar="N",
                      help="use a random sample of N images drawn with --seed, in proportion to the labels when there are labels")
    parser.add_argument("--classes", metavar="FILE", default=None, help="map folder names (e.g. ImageNet wnids) to class indices and names")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
