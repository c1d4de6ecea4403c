"""Transformation protocols of docs/protocols.md section 2: a registry of names to view builders.

Each protocol turns one 8-bit RGB image into an ordered list of views ``x_0 .. x_T`` as a
uint8 tensor ``(T + 1, 3, S, S)`` (pixels before normalisation), plus, for canvas protocols,
the pasted rectangle of each view (the inpainting mask ``M``: geometry, not pixel values).
Views are built on tensors: one resize per image (``crop``, ``circular``, ``zhang``,
``black``, ``inpaint``) or one per scale step (``scale``), then slices, rolls and pastes.

``get_protocol(name)`` / ``list_protocols()`` / ``parse_protocols("crop,black")`` work like
the model registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.rounding import rnd
from biasprobe.data.transforms import centre_crop, resize_longer, resize_shorter

__all__ = [
    "MIN_SIDE",
    "Protocol",
    "ProtocolParams",
    "Views",
    "get_protocol",
    "list_protocols",
    "parse_protocols",
    "register_protocol",
    "zhang_offsets",
]

MIN_SIDE = 8
"""Images with a side below this many pixels are skipped (too small to resize meaningfully)."""


@dataclass(frozen=True)
class ProtocolParams:
    """Geometry shared by the protocols: ``m``, ``E``, ``S``, zhang pairs and the run seed."""

    max_shift: int
    embed_size: int
    input_size: int
    pairs_per_image: int = 5
    run_seed: int = 0

    @classmethod
    def for_model(
        cls,
        preprocessing: Preprocessing,
        *,
        max_shift: int | None = None,
        embed_size: int | None = None,
        pairs_per_image: int = 5,
        run_seed: int = 0,
    ) -> ProtocolParams:
        """Defaults from the model: ``m`` = its max_shift, ``E = rnd(0.75 * S)``."""
        return cls(
            max_shift=preprocessing.max_shift if max_shift is None else int(max_shift),
            embed_size=rnd(0.75 * preprocessing.input_size) if embed_size is None else int(embed_size),
            input_size=preprocessing.input_size,
            pairs_per_image=int(pairs_per_image),
            run_seed=int(run_seed),
        )

    @property
    def crop_size(self) -> int:
        """``B = S + m``: the square the ``crop`` and ``zhang`` windows slide in."""
        return self.input_size + self.max_shift

    @property
    def canvas_offset(self) -> int:
        """``o = (S - E - m) // 2`` of the ``black`` protocol."""
        return (self.input_size - self.embed_size - self.max_shift) // 2

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Views:
    """The views of one image under one protocol."""

    pixels: torch.Tensor
    """uint8 (V, 3, S, S), pixel values before normalisation."""
    mask: torch.Tensor | None = None
    """bool (V, S, S): the pasted rectangle of each view (canvas protocols), else None."""


ViewBuilder = Callable[[Image.Image, str, ProtocolParams], Views]


@dataclass(frozen=True)
class Protocol:
    """A name users can type, what it does and how its views are built."""

    name: str
    description: str
    build: ViewBuilder
    paired: bool = False
    """True for ``zhang``: views come in independent pairs (2i, 2i+1), not a sequence."""
    needs_canvas: bool = False
    """True when the protocol pastes the image at size <= E + m on the S x S canvas."""
    fill: bool = False
    """True for ``inpaint``: the background is filled on tensors before the forward pass."""

    def n_views(self, params: ProtocolParams) -> int:
        """Number of views per image."""
        return 2 * params.pairs_per_image if self.paired else params.max_shift + 1

    def offsets(self, image_id: str, params: ProtocolParams) -> tuple[np.ndarray, np.ndarray]:
        """Per view (dx, dy): the shift, the window corner (zhang) or the pasted size (scale)."""
        if self.paired:
            pairs = zhang_offsets(image_id, params)  # (P, 4): h1, w1, h2, w2
            dy = pairs[:, [0, 2]].reshape(-1)
            dx = pairs[:, [1, 3]].reshape(-1)
            return dx.astype(np.int64), dy.astype(np.int64)
        steps = np.arange(params.max_shift + 1, dtype=np.int64)
        if self.name == "scale":
            steps = steps + params.embed_size
        return steps, steps.copy()

    def check(self, params: ProtocolParams) -> None:
        """Raise InputError when the parameters do not fit this protocol."""
        s, e, m = params.input_size, params.embed_size, params.max_shift
        if m < 1:
            raise InputError(f"--max-shift must be at least 1 (one pair of views), got {m}")
        if self.paired and params.pairs_per_image < 1:
            raise InputError(f"--pairs-per-image must be at least 1, got {params.pairs_per_image}")
        if self.needs_canvas:
            if e < 1:
                raise InputError(f"--embed-size must be at least 1, got {e}")
            if e + m > s:
                raise InputError(
                    f"protocol {self.name!r} needs embed size + max shift <= input size, got "
                    f"{e} + {m} > {s}; lower --embed-size or --max-shift"
                )


_PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add a protocol to the registry."""
    if protocol.name in _PROTOCOLS:
        raise ValueError(f"protocol {protocol.name!r} registered twice")
    _PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or an InputError listing what exists."""
    if name not in _PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; known: {', '.join(_PROTOCOLS)}")
    return _PROTOCOLS[name]


def list_protocols() -> list[Protocol]:
    """Every protocol, in registration order."""
    return list(_PROTOCOLS.values())


def parse_protocols(spec: str | Sequence[str]) -> list[Protocol]:
    """``"crop,black"`` (or a list of names) -> protocols, duplicates removed, order kept."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise InputError(f"no protocol given; choose from {', '.join(_PROTOCOLS)}")
    return [get_protocol(n) for n in dict.fromkeys(names)]


def _chw(img: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _crop_square(img: Image.Image, params: ProtocolParams) -> torch.Tensor:
    b = params.crop_size
    return _chw(centre_crop(resize_shorter(img, b), b))


def _windows(square: torch.Tensor, corners: Sequence[tuple[int, int]], size: int) -> torch.Tensor:
    """S x S windows of a (3, B, B) tensor at (top, left) corners -> (V, 3, S, S)."""
    return torch.stack([square[:, t : t + size, left : left + size] for t, left in corners])


def _build_crop(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    square = _crop_square(img, params)
    size = params.input_size
    c, row, col = square.stride()
    # Diagonal windows as a strided view of the square: no copy, and only the (3, B, B)
    # square crosses from the worker to the main process (one copy, into the batch).
    return Views(square.as_strided((params.max_shift + 1, 3, size, size), (row + col, c, row, col)))


def zhang_offsets(image_id: str, params: ProtocolParams) -> np.ndarray:
    """(P, 4) int array of ``h1, w1, h2, w2`` per pair, drawn per image from its id and the seed."""
    rng = np.random.default_rng([params.run_seed, int(image_id[:8], 16)])
    m = params.max_shift
    return np.stack([rng.integers(0, m + 1, size=4) for _ in range(params.pairs_per_image)])


def _build_zhang(img: Image.Image, image_id: str, params: ProtocolParams) -> Views:
    square = _crop_square(img, params)
    corners = []
    for h1, w1, h2, w2 in zhang_offsets(image_id, params).tolist():
        corners += [(h1, w1), (h2, w2)]
    return Views(_windows(square, corners, params.input_size))


def _build_circular(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s = params.input_size
    crop = _chw(centre_crop(resize_shorter(img, s), s))
    return Views(torch.stack([torch.roll(crop, shifts=(t, t), dims=(1, 2)) for t in range(params.max_shift + 1)]))


def _paste(pixels: torch.Tensor, mask: torch.Tensor, view: int, patch: torch.Tensor, x: int, y: int) -> None:
    _, h, w = patch.shape
    pixels[view, :, y : y + h, x : x + w] = patch
    mask[view, y : y + h, x : x + w] = True


def _build_black(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s, e, n = params.input_size, params.embed_size, params.max_shift + 1
    patch = _chw(resize_longer(img, e))
    _, h, w = patch.shape
    o = params.canvas_offset
    pixels = torch.zeros((n, 3, s, s), dtype=torch.uint8)
    mask = torch.zeros((n, s, s), dtype=torch.bool)
    for t in range(n):
        _paste(pixels, mask, t, patch, o + t + (e - w) // 2, o + t + (e - h) // 2)
    return Views(pixels, mask)


def _build_scale(img: Image.Image, _image_id: str, params: ProtocolParams) -> Views:
    s, e, n = params.input_size, params.embed_size, params.max_shift + 1
    pixels = torch.zeros((n, 3, s, s), dtype=torch.uint8)
    mask = torch.zeros((n, s, s), dtype=torch.bool)
    for t in range(n):
        patch = _chw(resize_longer(img, e + t))
        _, h, w = patch.shape
        _paste(pixels, mask, t, patch, (s - w) // 2, (s - h) // 2)
    return Views(pixels, mask)


register_protocol(Protocol("crop", "diagonal 1-pixel shifts of an S x S window in the (S + m) square: content only (the paper's Crop)", _build_crop))
register_protocol(Protocol("black", "the image (longer side E) pasted on a black S x S canvas, moved diagonally 1 pixel per view (the paper's Black)", _build_black, needs_canvas=True))
register_protocol(Protocol("inpaint", "as black, with the background filled by normalised convolution (13-tap binomial)", _build_black, needs_canvas=True, fill=True))
register_protocol(Protocol("scale", "the image pasted centred on a black canvas, longer side E, E + 1, ..., E + m", _build_scale, needs_canvas=True))
register_protocol(Protocol("circular", "the S x S centre crop rolled diagonally with wrap-around (an upper bound)", _build_circular))
register_protocol(Protocol("zhang", "random pairs of S x S windows in the (S + m) square, seeded per image (Zhang 2019)", _build_zhang, paired=True))
