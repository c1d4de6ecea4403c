"""Training the built-in world's CNNs: AdamW with a one-cycle schedule, deterministic for a seed.

Images are read with the foundation's loader (docs/protocols.md section 1), so training pixels are
the pixels the evaluation pipeline sees, then the whole split is kept in memory as a uint8
tensor. Training input (S = 48 on a 56 canvas):
- baseline: the centre S x S crop, exactly the embedding preprocessing of section 4;
- ``augment="crop"``: a random S x S window of the canvas (offsets 0..m per axis);
- ``augment="scale"``: the canvas resized by a factor drawn from [0.75, 1.25] about its
  centre (bilinear, ``grid_sample``, black outside), then the centre S x S crop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from biasprobe.core.errors import InputError
from biasprobe.core.skipped import Skipped
from biasprobe.data.sources import ImageRecord, open_source
from biasprobe.data.transforms import normalise
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.stream import Prepared, iter_prepared
from biasprobe.world.checkpoint import write_checkpoint
from biasprobe.world.choices import AUGMENTS, SCALE_RANGE
from biasprobe.world.generate import read_world_info
from biasprobe.world.nets import WORLD_ARCHS, WORLD_PREPROCESSING, build_net, net_config

__all__ = ["AUGMENTS", "SCALE_RANGE", "TrainResult", "WorldData", "load_split", "rescale_centre", "train_world_model"]

log = logging.getLogger(__name__)

CLASSES = [str(i) for i in range(10)]


@dataclass(frozen=True)
class WorldData:
    """One split in memory: uint8 canvases (N, 3, B, B), labels (N,), relative paths and what
    was skipped."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: tuple[str, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class TrainResult:
    """What ``train_world_model`` wrote and measured."""

    path: Path
    config: dict[str, object]
    train_accuracy: float
    test_accuracy: float | None
    seconds: float


def _canvas_tensor(image: Image.Image, record: ImageRecord, image_id: str, *, canvas: int) -> torch.Tensor:
    if image.size != (canvas, canvas):
        raise InputError(f"expected a {canvas}x{canvas} world canvas, got {image.size[0]}x{image.size[1]}")
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy())


def load_split(folder: str | Path, *, canvas: int, workers: int = 0) -> WorldData:
    """Read an ImageFolder split of the world into memory (unusable files are skipped, listed)."""
    from functools import partial

    source = open_source(folder)
    images: list[torch.Tensor] = []
    labels: list[int] = []
    paths: list[str] = []
    skipped = [s for s in source.skipped if not s.path.endswith("boxes.csv")]
    for item in iter_prepared(source.records, partial(_canvas_tensor, canvas=canvas), workers=workers):
        if isinstance(item, Prepared):
            if item.record.label is None:
                raise InputError(f"{item.record.relative} in {folder} has no class; expected an ImageFolder split")
            images.append(item.tensor)
            labels.append(item.record.label)
            paths.append(item.record.relative)
        else:
            skipped.append(item[1])
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    if not images:
        raise InputError(f"no usable world images in {folder}")
    return WorldData(torch.stack(images), torch.tensor(labels, dtype=torch.int64), tuple(paths), tuple(skipped))


def rescale_centre(x: torch.Tensor, factors: torch.Tensor, *, size: int) -> torch.Tensor:
    """Resize each float canvas by its factor about the centre (bilinear, black outside), then
    take the centre ``size x size`` crop; a factor of 1 gives the plain centre crop exactly."""
    theta = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = (size / x.shape[-1]) / factors.to(x.dtype)
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _batch_input(raw: torch.Tensor, *, augment: str | None, size: int, gen: torch.Generator) -> torch.Tensor:
    """uint8 canvases -> normalised float model inputs, with the chosen augmentation."""
    x = raw.float().div_(255.0)
    canvas = x.shape[-1]
    if augment == "crop":
        offsets = torch.randint(0, canvas - size + 1, (x.shape[0], 2), generator=gen).tolist()
        x = torch.stack([img[:, oy : oy + size, ox : ox + size] for img, (oy, ox) in zip(x, offsets, strict=True)])
    elif augment == "scale":
        lo, hi = SCALE_RANGE
        x = rescale_centre(x, lo + (hi - lo) * torch.rand(x.shape[0], generator=gen), size=size)
    else:
        o = (canvas - size) // 2
        x = x[:, :, o : o + size, o : o + size]
    prep = WORLD_PREPROCESSING
    return normalise(x, prep.mean, prep.std).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def _accuracy(net: nn.Module, data: WorldData, *, size: int, batch_size: int) -> float:
    net.eval()
    correct = 0
    for start in range(0, len(data.labels), batch_size):
        x = _batch_input(data.images[start : start + batch_size], augment=None, size=size, gen=torch.Generator())
        correct += int((net(x).argmax(1) == data.labels[start : start + batch_size]).sum())
    return correct / len(data.labels)


def train_world_model(
    data_dir: str | Path,
    *,
    arch: str,
    out: str | Path,
    augment: str | None = None,
    antialias: bool = False,
    epochs: int = 8,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    threads: int | None = None,
    width: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``arch`` on ``data_dir/train`` and write a checkpoint the model registry loads.

    The checkpoint is ``{"state_dict", "config"}`` (config as JSON: architecture, preprocessing,
    classes, training options, accuracies and the world.json digest).
    """
    if arch not in WORLD_ARCHS:
        raise InputError(f"--arch must be one of {', '.join(WORLD_ARCHS)}, got {arch!r}")
    if augment not in (None, *AUGMENTS):
        raise InputError(f"--augment must be one of {', '.join(AUGMENTS)} (or omitted), got {augment!r}")
    if epochs < 1 or batch_size < 1:
        raise InputError(f"epochs and batch size must be at least 1, got {epochs} and {batch_size}")
    started = time.perf_counter()
    world = read_world_info(data_dir)
    size, canvas = world.config.input_size, world.config.canvas
    prep = WORLD_PREPROCESSING
    if (size, world.config.max_shift) != (prep.input_size, prep.max_shift):
        raise InputError(
            f"world {data_dir} has input {size} / max shift {world.config.max_shift}; the world models expect "
            f"{prep.input_size} / {prep.max_shift} (write the world with the default canvas and max shift)"
        )
    runtime = Runtime.create(device="cpu", threads=threads)
    train = load_split(world.train_dir, canvas=canvas)
    test = load_split(world.test_dir, canvas=canvas) if world.test_dir.is_dir() else None

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    config = net_config(arch, antialias=antialias, num_classes=len(CLASSES), input_size=size, width=width)
    net = build_net(config).to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(train.labels) // batch_size)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    bar = tqdm(total=epochs * steps_per_epoch, desc=f"train {arch}", unit="batch", disable=not progress, leave=False)
    train_acc = 0.0
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(train.labels), generator=gen)
        seen = correct = 0
        total_loss = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = _batch_input(train.images[idx], augment=augment, size=size, gen=gen)
            y = train.labels[idx]
            logits = net(x)
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            total_loss += loss.item() * len(y)
            bar.update(1)
            bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        train_acc = correct / seen
    bar.close()
    test_acc = _accuracy(net, test, size=size, batch_size=256) if test is not None else None
    net.eval()
    seconds = time.perf_counter() - started
    config.update({
        "preprocessing": prep.to_dict(),
        "classes": CLASSES,
        "augment": augment,
        "scale_range": list(SCALE_RANGE) if augment == "scale" else None,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "optimizer": {"name": "AdamW", "lr": lr, "weight_decay": weight_decay, "schedule": "OneCycleLR"},
        "train_images": len(train.labels),
        "train_skipped": len(train.skipped),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "world": {"digest": world.digest, "seed": world.config.seed},
        "torch_version": torch.__version__,
        "threads": runtime.threads,
    })
    out = Path(out)
    write_checkpoint(net.state_dict(), config, out)
    log.info("%s trained in %.1f s: train accuracy %.3f, test accuracy %s; written to %s", arch, seconds,
             train_acc, "n/a" if test_acc is None else f"{test_acc:.3f}", out)
    return TrainResult(out, config, train_acc, test_acc, seconds)
