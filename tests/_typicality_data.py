"""Inputs for the typicality tests: bundled photos and variants, a tiny model, brute force."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from torch import nn

from biasprobe.core.preprocessing import Preprocessing
from biasprobe.data.sources import bundled_photo_paths
from biasprobe.models import ProbeModel


def write_photo_sets(root: Path) -> tuple[Path, Path]:
    """train/: 9 photos, their mirror images, 2 byte-identical copies (20 rows, 18 images).
    test/: centre crops of the photos, a copy of a training photo, a broken file."""
    train, test = root / "train", root / "test"
    train.mkdir(parents=True)
    test.mkdir(parents=True)
    for name, path in bundled_photo_paths().items():
        shutil.copyfile(path, train / f"{name}{path.suffix}")
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            ImageOps.mirror(rgb).save(train / f"{name}_mirror.png")
            w, h = rgb.size
            rgb.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(test / f"{name}_crop.png")
    for name in ("chelsea", "coffee"):
        shutil.copyfile(train / f"{name}.png", train / f"{name}_copy.png")
    shutil.copyfile(train / "astronaut.png", test / "astronaut_again.png")
    (test / "broken.jpg").write_bytes(b"not a jpeg at all")
    return train, test


def write_noise_images(folder: Path, n: int, *, seed: int = 0, size: int = 40) -> Path:
    """n small random PNGs (distinct bytes), sorted by name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 256, size=(size, size + i % 7, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"img_{i:04d}.png")
    return folder


def tiny_model(*, seed: int = 0, name: str = "tiny", crop_pct: float = 0.875) -> ProbeModel:
    """A 3-layer CNN with an 8-dimensional embedding: fast enough for many images."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    prep = Preprocessing(input_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), crop_pct=crop_pct, max_shift=4)
    return ProbeModel(net, name=name, preprocessing=prep, class_names=[f"c{i}" for i in range(4)],
                      weights_sha256=f"{seed:064d}", weights_source="test")


def brute_force(queries: np.ndarray, query_ids: list[str], train: np.ndarray, train_ids: list[str]) -> np.ndarray:
    """Sorted leave-one-out distances (n, N): float64, every training row with the query's id at
    inf, and every repeated copy of a training file at inf (identical files are one image)."""
    q = queries.astype(np.float64)
    t = train.astype(np.float64)
    d = np.sqrt(((q[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    same = np.asarray(query_ids)[:, None] == np.asarray(train_ids)[None, :]
    _, first = np.unique(np.asarray(train_ids), return_index=True)
    repeat = np.ones(len(train_ids), bool)
    repeat[first] = False
    return np.sort(np.where(same | repeat[None, :], np.inf, d), axis=1)


def stored_embeddings(folder: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """All shards of an index folder, concatenated, with the id table."""
    ids = pd.read_parquet(folder / "ids.parquet")
    arrays = [np.load(p) for p in sorted((folder / "shards").glob("emb_*.npy"))]
    return np.concatenate([a for a in arrays if a.size]), ids
