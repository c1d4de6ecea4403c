"""What most commands do before their work, from the flags of common.py: check the paths they
were given, read the class map and open the images, create the runtime, build the model.

Each function imports its library lazily, so building the parser stays cheap. ``check_paths``
imports nothing heavy at all: ``cli.main`` calls it before any command runs, so a mistyped path
is refused in one line at once, before torch, timm or FAISS load (seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from biasprobe.core.errors import InputError
from biasprobe.data.photos import BUILTIN_PHOTOS

if TYPE_CHECKING:
    from biasprobe.core.outputs import OutputKind
    from biasprobe.data.sources import ImageSource
    from biasprobe.engine.runner import Engine
    from biasprobe.engine.runtime import Runtime
    from biasprobe.models import ProbeModel

__all__ = ["check_paths", "engine_from_args", "model_from_args", "runtime_from_args", "source_from_args"]


OUT_KINDS: dict[str, OutputKind] = {"demo": "folder", "world": "folder", "index": "folder", "train": "file", "report": "file",
             "score": "table", "invariance": "table", "layers": "table", "positions": "table"}  # fmt: skip
"""What each command writes at --out: a folder, a file, or a table (a file with companions)."""



def _check_out(command: str, out: str) -> None:
    """--out can be written: the right kind of thing, below a folder that can be written (core.outputs)."""
    from biasprobe.core.outputs import check_output_path

    kind = OUT_KINDS.get(command)
    if kind is not None:
        check_output_path(out, kind)


def _check_images(spec: str) -> None:
    if spec == BUILTIN_PHOTOS:
        return
    path = Path(spec)
    if not path.exists():
        raise InputError(f"images not found: {path} (a folder, a .csv manifest or {BUILTIN_PHOTOS})")
    if not path.is_dir() and path.suffix.lower() != ".csv":
        raise InputError(f"--images expects a folder, a .csv manifest or {BUILTIN_PHOTOS}, got the file {path}")


def _check_file(flag: str, what: str, spec: str, *, folder_too: bool = False) -> None:
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{what} not found: {path} ({flag})")
    if not folder_too and path.is_dir():
        raise InputError(f"{flag} {path} is a folder; expected a {what}")


def _check_index(spec: str) -> None:
    folder = Path(spec)
    if not (folder / "meta.json").is_file():  # the words of TrainingIndex.open
        hint = " (an unfinished build: re-run 'biasprobe index build' to resume it)" if folder.is_dir() else ""
        raise InputError(f"no index at {folder}: meta.json is missing{hint}; build one with 'biasprobe index build'")


def _check_world(spec: str) -> None:
    root = Path(spec)
    if not (root / "world.json").is_file():  # the words of world.read_world_info
        raise InputError(f"{root} is not a biasprobe world (no world.json); write one with 'biasprobe world --out DIR'")


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, in one line, a path that cannot work: --out where nothing can be written, and
    inputs that are not there (--images, --weights, --classes, --labels, --boxes, --boxes-train,
    --boxes-test, --scores, --invariance, --layers, --positions, --models and --factors of report, --index, --data). Only the file system is
    asked; what the files hold is checked by the stages."""
    command = getattr(args, "command", None) or ""
    if getattr(args, "out", None):
        _check_out(command, args.out)
    if getattr(args, "images", None):
        _check_images(args.images)
    for flag, what, folder_too in (("weights", "weights file", False), ("classes", "classes file", False),
                                   ("labels", "labels file", False),
                                   ("boxes", "boxes file or folder", True), ("boxes_train", "boxes file or folder", True),
                                   ("boxes_test", "boxes file or folder", True), ("scores", "table", False)):  # fmt: skip
        value = getattr(args, flag, None)
        if value:
            _check_file("--" + flag.replace("_", "-"), what, value, folder_too=folder_too)
    if command == "report":
        for table in args.invariance:
            _check_file("--invariance", "table", table)
        for table in getattr(args, "layers", None) or []:
            _check_file("--layers", "table", table)
        for table in getattr(args, "positions", None) or ():
            _check_file("--positions", "table", table)
        for table in getattr(args, "models", None) or ():
            _check_file("--models", "table", table)
        factors = getattr(args, "factors", None)
        if factors and factors != "imagenet-x":
            _check_file("--factors", "factor annotations file (or the word imagenet-x)", factors)
    if getattr(args, "index", None):
        _check_index(args.index)
    if command == "train":
        _check_world(args.data)


def source_from_args(args: argparse.Namespace, model: ProbeModel | None = None) -> ImageSource:
    """--images with --classes, --labels, --boxes and --limit or --sample (with --seed); with ``model``,
    labels are read and checked against its classes (wnid folders get an ImageNet model's
    indices; data/labels.py)."""
    from biasprobe.data.classes import read_class_map
    from biasprobe.data.sources import open_source

    space = None
    if model is not None:
        from biasprobe.models.classes import class_space

        space = class_space(model)
    classes = read_class_map(args.classes) if args.classes else None
    return open_source(args.images, classes=classes, class_space=space, boxes=getattr(args, "boxes", None),
                       labels=getattr(args, "labels", None), limit=args.limit,
                       sample=args.sample, seed=args.seed)


def runtime_from_args(args: argparse.Namespace) -> Runtime:
    """--device, --threads and --precision."""
    from biasprobe.engine.runtime import Runtime

    return Runtime.create(device=args.device, threads=args.threads, precision=args.precision)


def model_from_args(args: argparse.Namespace) -> ProbeModel:
    """--model and --weights."""
    from biasprobe.models import ModelFactory

    return ModelFactory(args.model, args.weights).build()


_RAY_FLAGS = ("ray_address", "ray_temp", "ray_workers", "ray_cpus", "ray_gpus", "ray_timeout")


def engine_from_args(args: argparse.Namespace) -> Engine:
    """--engine and the --ray-* flags (cli.common.add_engine_flags). Ray flags without
    --engine ray, and --engine ray without Ray installed, are refused in one line; no torch loads."""
    from biasprobe.engine.runner import Engine

    given = [f"--{name.replace('_', '-')}" for name in _RAY_FLAGS if getattr(args, name, None) is not None]
    if args.engine != "ray":
        if given:
            raise InputError(f"{', '.join(given)} only apply to the Ray engine: add --engine ray")
        return Engine()
    timeout = {"timeout_s": args.ray_timeout} if args.ray_timeout is not None else {}
    return Engine(kind="ray", ray_address=args.ray_address, ray_temp=Path(args.ray_temp) if args.ray_temp else None,
                  workers=args.ray_workers, cpus_per_worker=args.ray_cpus, gpus_per_worker=args.ray_gpus, **timeout)
