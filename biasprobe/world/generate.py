"""The built-in photographer's-bias world: real handwritten digits pasted on a black canvas.

Training objects sit near the canvas centre at nearly one size (the photographer's bias);
test objects, held-out digit samples, spread uniformly over positions and sizes. The world is
written as ImageFolder splits (``train/``, ``test/``, class folders ``0``..``9``) with a
``boxes.csv`` per split and a ``world.json`` recording every knob, deterministic for a seed.

Geometry (defaults): each 8 x 8 digit of scikit-learn's ``load_digits`` is resized with
Pillow bilinear to ``rnd(16 * scale)`` pixels square and pasted on a 56 x 56 canvas, so a
48-pixel model with max shift 8 sees the crop protocol as an exact translation. The box is
the pasted square; ``offset_x/offset_y`` are its realised centre minus the canvas centre.
``clipped`` is set when the box leaves the region common to all crop windows
(``[m, S)`` on both axes), i.e. when some view of the crop or zhang protocols would cut it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from biasprobe import __version__
from biasprobe.core.errors import InputError
from biasprobe.core.hashing import file_sha256
from biasprobe.core.io import write_json
from biasprobe.core.records import read_json_object
from biasprobe.core.rounding import rnd
from biasprobe.world.config import WorldConfig

__all__ = ["WORLD_JSON", "WorldConfig", "WorldInfo", "make_world", "read_world_info"]

log = logging.getLogger(__name__)

WORLD_JSON = "world.json"
_MAX_REDRAWS = 50


@dataclass(frozen=True)
class WorldInfo:
    """What ``make_world`` wrote."""

    root: Path
    config: WorldConfig
    n_train: int
    n_test: int
    n_clipped: int
    digest: str

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def test_dir(self) -> Path:
        return self.root / "test"

    def boxes(self, split: str) -> Path:
        """``boxes.csv`` of a split (``train`` or ``test``)."""
        return self.root / split / "boxes.csv"


def _digit_sprites(config: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """The digits as uint8 8 x 8 images (0..255) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.floor(digits.images * (255.0 / 16.0) + 0.5).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    if config.digits is not None and config.digits < len(labels):
        from sklearn.model_selection import train_test_split

        pick, _ = train_test_split(np.arange(len(labels)), train_size=config.digits, random_state=config.seed,
                                   stratify=labels)
        pick = np.sort(pick)  # a class-balanced subset
        images, labels = images[pick], labels[pick]
    return images, labels


def _split(labels: np.ndarray, config: WorldConfig) -> np.ndarray:
    """Boolean mask of the held-out (test) digits, stratified by class."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    _, test_idx = train_test_split(idx, test_size=config.test_fraction, random_state=config.seed, stratify=labels)
    mask = np.zeros(len(labels), dtype=bool)
    mask[test_idx] = True
    return mask


def _draw(rng: np.random.Generator, config: WorldConfig, *, test: bool) -> tuple[float, float, float]:
    if test:
        ox, oy = rng.uniform(-config.test_offset_max, config.test_offset_max, size=2)
        scale = rng.uniform(config.test_scale_min, config.test_scale_max)
    else:
        ox, oy = np.clip(rng.normal(0.0, config.train_offset_std, size=2), -config.train_offset_clip, config.train_offset_clip)
        scale = rng.normal(1.0, config.train_scale_std)
    return float(ox), float(oy), float(scale)


def _placement(draw: tuple[float, float, float], config: WorldConfig) -> tuple[int, int, int]:
    """Pasted square (left, top, size) for a drawn (offset_x, offset_y, scale)."""
    ox, oy, scale = draw
    size = max(1, rnd(8 * config.upsample * scale))
    centre = config.canvas / 2
    return rnd(centre + ox - size / 2), rnd(centre + oy - size / 2), size


def _is_clipped(left: int, top: int, size: int, config: WorldConfig) -> bool:
    lo, hi = config.max_shift, config.input_size  # region shared by every crop window
    return min(left, top) < lo or max(left, top) + size > hi


def _render(sprite: np.ndarray, left: int, top: int, size: int, canvas: int) -> Image.Image:
    patch = np.asarray(Image.fromarray(sprite, "L").resize((size, size), Image.Resampling.BILINEAR))
    out = np.zeros((canvas, canvas), dtype=np.uint8)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + size, canvas), min(top + size, canvas)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = patch[y0 - top : y1 - top, x0 - left : x1 - left]
    return Image.fromarray(np.stack([out] * 3, axis=-1), "RGB")


def _write_split(split: str, root: Path, sprites: np.ndarray, labels: np.ndarray, sources: np.ndarray,
                 rng: np.random.Generator, config: WorldConfig) -> pd.DataFrame:
    test = split == "test"
    placements = config.test_placements if test else config.train_placements
    for label in range(10):
        (root / split / str(label)).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for digit in sources:
        seen: set[tuple[int, int, int]] = set()
        for _ in range(placements):
            for _attempt in range(_MAX_REDRAWS):  # distinct placements: identical files would be one image
                draw = _draw(rng, config, test=test)
                left, top, size = _placement(draw, config)
                if (left, top, size) not in seen:
                    break
            seen.add((left, top, size))
            label = int(labels[digit])
            rel = f"{label}/{len(rows):06d}.png"
            _render(sprites[digit], left, top, size, config.canvas).save(root / split / rel, format="PNG")
            c = config.canvas / 2
            rows.append({
                "path": rel, "label": label, "xmin": left, "ymin": top, "xmax": left + size, "ymax": top + size,
                "image_width": config.canvas, "image_height": config.canvas,
                "clipped": _is_clipped(left, top, size, config),
                "offset_x": left + size / 2 - c, "offset_y": top + size / 2 - c,
                "scale": size / (8 * config.upsample), "digit": int(digit),
                "drawn_offset_x": draw[0], "drawn_offset_y": draw[1], "drawn_scale": draw[2],
            })
    table = pd.DataFrame(rows)
    table.to_csv(root / split / "boxes.csv", index=False, float_format="%.6g")
    return table


def make_world(out: str | Path, config: WorldConfig | None = None, *, overwrite: bool = False) -> WorldInfo:
    """Write the world to ``out`` (built in a temporary sibling folder, then moved into place).

    An existing ``out`` is replaced only when ``overwrite`` is set and it holds a world
    (a ``world.json``); any other non-empty folder is refused.
    """
    config = config or WorldConfig()
    config.validate()
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out} is a file; expected a folder for the world")
        if any(out.iterdir()):
            if not (out / WORLD_JSON).is_file():
                raise InputError(f"--out {out} is a non-empty folder that is not a world; choose a new folder")
            if not overwrite:
                raise InputError(f"a world already exists in {out}; pass --overwrite to replace it or choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    sprites, labels = _digit_sprites(config)
    is_test = _split(labels, config)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        rng_train = np.random.default_rng([config.seed, 2])
        rng_test = np.random.default_rng([config.seed, 3])
        train = _write_split("train", tmp, sprites, labels, np.flatnonzero(~is_test), rng_train, config)
        test = _write_split("test", tmp, sprites, labels, np.flatnonzero(is_test), rng_test, config)
        n_clipped = int(train["clipped"].sum() + test["clipped"].sum())
        summary = {
            "kind": "biasprobe world",
            "biasprobe_version": __version__,
            "config": config.to_dict(),
            "objects": "scikit-learn load_digits (UCI handwritten digits), 8x8, values 0..16 scaled to 0..255",
            "splits": {
                name: {
                    "images": len(t), "digits": int(t["digit"].nunique()), "clipped": int(t["clipped"].sum()),
                    "per_class": {str(k): int(v) for k, v in t["label"].value_counts().sort_index().items()},
                    "abs_offset_mean": float(np.hypot(t["offset_x"], t["offset_y"]).mean()),
                    "scale_range": [float(t["scale"].min()), float(t["scale"].max())],
                }
                for name, t in (("train", train), ("test", test))
            },
            "geometry": {
                "box": "pasted square, 0-based, max exclusive, canvas pixels",
                "offset": "box centre minus canvas centre (canvas / 2)",
                "clipped": f"box not inside [{config.max_shift}, {config.input_size}) on both axes "
                "(the region every crop window of the model input holds)",
            },
        }
        write_json(summary, tmp / WORLD_JSON)
        if n_clipped:
            log.warning("%d objects leave some crop window (clipped); see boxes.csv", n_clipped)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("world written to %s: %d train and %d test images", out, len(train), len(test))
    return WorldInfo(out, config, len(train), len(test), n_clipped, file_sha256(out / WORLD_JSON))


def read_world_info(root: str | Path) -> WorldInfo:
    """The WorldInfo of a world folder written by ``make_world``."""
    root = Path(root)
    path = root / WORLD_JSON
    if not path.is_file():
        raise InputError(f"{root} is not a biasprobe world (no {WORLD_JSON}); write one with 'biasprobe world --out DIR'")
    data = read_json_object(path)
    config = WorldConfig.from_dict(data["config"])
    splits = data["splits"]
    clipped = int(splits["train"]["clipped"]) + int(splits["test"]["clipped"])
    return WorldInfo(root, config, int(splits["train"]["images"]), int(splits["test"]["images"]), clipped, file_sha256(path))
