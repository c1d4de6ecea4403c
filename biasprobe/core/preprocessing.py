"""A model's input geometry and normalisation: the value every stage reads it from."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from biasprobe.core.rounding import rnd

__all__ = ["Preprocessing"]


@dataclass(frozen=True)
class Preprocessing:
    """Input geometry and normalisation of a model (never hard-coded elsewhere)."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float
    max_shift: int

    @property
    def embed_size(self) -> int:
        """Default size E of the pasted image for ``black``, ``inpaint`` and ``scale``."""
        return rnd(0.75 * self.input_size)

    @property
    def resize_size(self) -> int:
        """Shorter side before the centre crop of the embedding preprocessing."""
        return rnd(self.input_size / self.crop_pct)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out
