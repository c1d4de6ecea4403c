"""What most commands do before their work, from the flags of common.py: read the class map
and open the images, create the runtime, build the model.

Each function imports its library lazily, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from biasprobe.data.sources import ImageSource
    from biasprobe.engine.runtime import Runtime
    from biasprobe.models import ProbeModel

__all__ = ["model_from_args", "runtime_from_args", "source_from_args"]


def source_from_args(args: argparse.Namespace, model: ProbeModel | None = None) -> ImageSource:
    """--images with --classes, --boxes and --limit or --sample (with --seed); with ``model``, labels are read and checked
    against its classes (wnid folders get an ImageNet model's indices; data/labels.py)."""
    from biasprobe.data.classes import read_class_map
    from biasprobe.data.sources import open_source

    space = None
    if model is not None:
        from biasprobe.models.classes import class_space

        space = class_space(model)
    classes = read_class_map(args.classes) if args.classes else None
    return open_source(args.images, classes=classes, class_space=space, boxes=args.boxes, limit=args.limit,
                       sample=args.sample, seed=args.seed)


def runtime_from_args(args: argparse.Namespace) -> Runtime:
    """--device, --threads and --precision."""
    from biasprobe.engine.runtime import Runtime

    return Runtime.create(device=args.device, threads=args.threads, precision=args.precision)


def model_from_args(args: argparse.Namespace) -> ProbeModel:
    """--model and --weights."""
    from biasprobe.models import ModelFactory

    return ModelFactory(args.model, args.weights).build()
