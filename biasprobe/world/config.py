"""The world's settings, importable without numpy, pandas or torch (``biasprobe world``'s parser
reads the defaults before any command runs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from biasprobe.core.errors import InputError

__all__ = ["WorldConfig"]


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the world; the defaults are the issue's (see docs/world.md)."""

    seed: int = 0
    canvas: int = 56
    max_shift: int = 8
    upsample: int = 2
    test_fraction: float = 0.3
    train_placements: int = 4
    test_placements: int = 2
    train_offset_std: float = 2.0
    train_offset_clip: float = 6.0
    train_scale_std: float = 0.05
    test_offset_max: float = 9.0
    test_scale_min: float = 0.75
    test_scale_max: float = 1.25
    digits: int | None = None

    @property
    def input_size(self) -> int:
        """Model input S = canvas - max_shift (48 with the defaults)."""
        return self.canvas - self.max_shift

    def validate(self) -> None:
        """Raise InputError for settings that cannot make a world."""
        problems = []
        if self.canvas < 8 or self.max_shift < 0 or self.input_size < 8:
            problems.append(f"canvas {self.canvas} and max_shift {self.max_shift} leave no input (need canvas - max_shift >= 8)")
        if not 0.0 < self.test_fraction < 1.0:
            problems.append(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.train_placements < 1 or self.test_placements < 1:
            problems.append("placements per digit must be at least 1")
        if self.upsample < 1:
            problems.append(f"upsample must be at least 1, got {self.upsample}")
        if min(self.train_offset_std, self.train_offset_clip, self.train_scale_std, self.test_offset_max) < 0:
            problems.append("offsets and spreads must be >= 0")
        if not 0 < self.test_scale_min <= self.test_scale_max:
            problems.append(f"test scales need 0 < min <= max, got [{self.test_scale_min}, {self.test_scale_max}]")
        if self.digits is not None and min(self.test_fraction, 1 - self.test_fraction) * self.digits < 10:
            problems.append(f"{self.digits} digits leave fewer than 10 (one per class) in a split; use more digits")
        if problems:
            raise InputError("bad world settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "input_size": self.input_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorldConfig:
        """The config of a ``world.json`` (parsed JSON; keys that are not knobs are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
