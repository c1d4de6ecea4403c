"""The protocol catalogue: every protocol's name, description, flags, definition and geometry.

The one registry of protocols (docs/protocols.md section 2; the paper presets of
docs/literature.md). It imports neither torch nor the invariance stage's other modules, so a
command's ``--help`` can list the protocols without loading torch. The views themselves are
built by ``biasprobe.invariance.protocols`` (imported when ``Protocol.build`` is first called).

Two definitions live side by side:

- ``biasprobe``: the protocols of docs/protocols.md section 2 (``crop``, ``black``, ...), with the
  geometry parameters ``m``, ``E`` and ``P``.
- the paper presets (``azulay2019-*``, ``zhang2019*``): the geometry of the original papers'
  code, its canvas colour, resizes, shift sets and fill (docs/literature.md). Their view count
  and sizes are fixed by that code (``--max-shift`` and ``--embed-size`` do not apply; the
  input size ``S`` replaces the originals' 224, their pixel margins and shift counts are kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from biasprobe.core.errors import InputError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.rounding import rnd

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from biasprobe.invariance.protocols import Views

__all__ = [
    "AZULAY_CROP_MARGIN",
    "AZULAY_EMBED_SCALE",
    "AZULAY_PAIRS",
    "BIASPROBE",
    "FILLS",
    "MIN_SIDE",
    "ZHANG_DIAGONAL_VIEWS",
    "ZHANG_DRAW",
    "ZHANG_MARGIN",
    "Protocol",
    "ProtocolParams",
    "azulay_canvas_start",
    "azulay_embed_size",
    "azulay_scale_sides",
    "get_protocol",
    "list_protocols",
    "paired_protocol_names",
    "parse_protocols",
    "register_protocol",
    "zhang_offsets",
]

MIN_SIDE = 8
"""Images with a side below this many pixels are skipped (too small to resize meaningfully)."""

BIASPROBE = "biasprobe"
"""The definition of biasprobe's own protocols (docs/protocols.md section 2)."""

FILLS = ("", "inpaint", "mean", "azulay2019")
"""What happens to a canvas view's background on tensors, after the uint8 views reach the device:
nothing (black stays 8-bit 0), biasprobe's inpainting (section 2.3), the mean colour (exactly 0
after normalisation: the originals' zero canvas), or the original Azulay & Weiss inpainting."""

# The Azulay & Weiss code (AzulEye/CNN-Failures, CheckTranslationInvariance.py), at S = 224:
AZULAY_PAIRS = 8
"""``for c in range(center - 4, center + 4)``: 8 pairs (c, c + 1), 9 views."""
AZULAY_CROP_MARGIN = 10
"""``RandomResizedCrop(234)``: the crop square is S + 10."""
AZULAY_EMBED_SCALE = 1.3
"""``RandomResizedCenterCrop(int(224 / s))`` for s in 1.3, 1.6, 1.9: the presets take s = 1.3."""

# The antialiased-cnns code (adobe/antialiased-cnns, main.py), at S = 224:
ZHANG_MARGIN = 32
"""``Resize(256)``, ``CenterCrop(256)``: the square is S + 32."""
ZHANG_DRAW = 32
"""``np.random.randint(32, size=2)``: window corners 0..31."""
ZHANG_DIAGONAL_VIEWS = 33
"""``validate_diagonal``: ``D = 33`` windows at (off, off), off = 0..32."""


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


def azulay_embed_size(input_size: int) -> int:
    """``int(S / 1.3)``: the side of the squashed square the Azulay canvas presets paste (172 at 224)."""
    return int(input_size / AZULAY_EMBED_SCALE)


def azulay_canvas_start(input_size: int, side: int) -> int:
    """The first paste position: ``center - 4`` with ``center = int((S - side - 1) / 2)``."""
    return int((input_size - side - 1) / 2) - AZULAY_PAIRS // 2


def azulay_scale_sides(input_size: int) -> list[int]:
    """``azulay2019-scale``: sides ``E - 4 .. E + 4``, ``E = int(S / 1.3)`` (9 views)."""
    e = azulay_embed_size(input_size)
    return [e - AZULAY_PAIRS // 2 + t for t in range(AZULAY_PAIRS + 1)]


def zhang_offsets(image_id: str, params: ProtocolParams, *, high: int | None = None) -> np.ndarray:
    """(P, 4) int array of ``h1, w1, h2, w2`` per pair, drawn per image from its id and the seed.

    Each value is drawn from ``0 .. high - 1``; ``high`` is ``m + 1`` for ``zhang`` and 32 for
    ``zhang2019`` (the original's ``np.random.randint(32, size=2)``, twice per pair).
    """
    import numpy as np

    rng = np.random.default_rng([params.run_seed, int(image_id[:8], 16)])
    top = params.max_shift + 1 if high is None else int(high)
    return np.stack([rng.integers(0, top, size=4) for _ in range(params.pairs_per_image)])


@dataclass(frozen=True)
class Protocol:
    """A name users can type, what it does, which definition it follows and its view layout.

    ``layout`` says how many views there are and what ``dx``, ``dy`` record:
    ``shift`` (m + 1 views, the shift t), ``size`` (m + 1 views, the pasted side E + t),
    ``pairs`` (2P views, window corners drawn from 0..m), and the presets' fixed layouts
    ``azulay-shift`` (9 views, t), ``azulay-size`` (9 views, the pasted side),
    ``zhang2019-pairs`` (2P views, corners drawn from 0..31) and ``zhang2019-diagonal``
    (33 views, t).
    """

    name: str
    description: str
    layout: str = "shift"
    paired: bool = False
    """True when views come in independent pairs (2i, 2i+1), not a sequence."""
    needs_canvas: bool = False
    """True when the protocol pastes the image at size <= E + m on the S x S canvas (biasprobe's E)."""
    fill: str = ""
    """How the background is filled on tensors before the forward pass (one of ``FILLS``)."""
    definition: str = BIASPROBE
    """``biasprobe`` (docs/protocols.md) or the paper whose code the preset follows."""
    source: str = "docs/protocols.md section 2.2"
    """Where the definition is written: a section, or the original code's file and function."""

    def build(self, img: Image.Image, image_id: str, params: ProtocolParams) -> Views:
        """The views of one image (``biasprobe.invariance.protocols``; imports torch)."""
        from biasprobe.invariance.protocols import build_views

        return build_views(self, img, image_id, params)

    def describe(self) -> dict[str, Any]:
        """What a summary records of the protocol: the definition that produced its figures."""
        return {"definition": self.definition, "source": self.source, "description": self.description}

    def n_views(self, params: ProtocolParams) -> int:
        """Number of views per image."""
        if self.paired:
            return 2 * params.pairs_per_image
        if self.layout in ("azulay-shift", "azulay-size"):
            return AZULAY_PAIRS + 1
        if self.layout == "zhang2019-diagonal":
            return ZHANG_DIAGONAL_VIEWS
        return params.max_shift + 1

    def offsets(self, image_id: str, params: ProtocolParams) -> tuple[np.ndarray, np.ndarray]:
        """Per view (dx, dy): the shift, the window corner (pairs) or the pasted size (scale)."""
        import numpy as np

        if self.paired:
            pairs = zhang_offsets(image_id, params, high=ZHANG_DRAW if self.layout == "zhang2019-pairs" else None)
            dy = pairs[:, [0, 2]].reshape(-1)
            dx = pairs[:, [1, 3]].reshape(-1)
            return dx.astype(np.int64), dy.astype(np.int64)
        if self.layout == "azulay-size":
            sides = np.asarray(azulay_scale_sides(params.input_size), dtype=np.int64)
            return sides, sides.copy()
        steps = np.arange(self.n_views(params), dtype=np.int64)
        if self.layout == "size":
            steps = steps + params.embed_size
        return steps, steps.copy()

    def check(self, params: ProtocolParams) -> None:
        """Raise InputError when the parameters do not fit this protocol."""
        s, e, m = params.input_size, params.embed_size, params.max_shift
        if self.definition != BIASPROBE:
            if self.paired and params.pairs_per_image < 1:
                raise InputError(f"--pairs-per-image must be at least 1, got {params.pairs_per_image}")
            self._check_preset(s)
            return
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

    def _check_preset(self, s: int) -> None:
        """The presets' fixed geometry must fit the model's input size ``S``."""
        if self.layout in ("azulay-shift", "azulay-size") and self.name != "azulay2019-crop":
            sides = azulay_scale_sides(s) if self.layout == "azulay-size" else [azulay_embed_size(s)]
            for side in sides:
                start = azulay_canvas_start(s, side)
                if side < 1 or start < 0 or start + AZULAY_PAIRS + side > s:
                    raise InputError(f"protocol {self.name!r} does not fit a {s}-pixel input: the image of side "
                                     f"int({s} / {AZULAY_EMBED_SCALE}) and its {AZULAY_PAIRS} one-pixel steps need a larger canvas")


_PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add a protocol to the registry."""
    if protocol.name in _PROTOCOLS:
        raise ValueError(f"protocol {protocol.name!r} registered twice")
    if protocol.fill not in FILLS:
        raise ValueError(f"protocol {protocol.name!r}: unknown fill {protocol.fill!r}")
    _PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or an InputError listing what exists."""
    if name not in _PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; known: {', '.join(_PROTOCOLS)}")
    return _PROTOCOLS[name]


def list_protocols(*, presets: bool = False) -> list[Protocol]:
    """biasprobe's own protocols in registration order; with ``presets``, the paper presets after them."""
    return [p for p in _PROTOCOLS.values() if presets or p.definition == BIASPROBE]


def paired_protocol_names() -> tuple[str, ...]:
    """The names of the protocols whose views are independent pairs."""
    return tuple(p.name for p in _PROTOCOLS.values() if p.paired)


def parse_protocols(spec: str | Sequence[str]) -> list[Protocol]:
    """``"crop,black"`` (or a list of names) -> protocols, duplicates removed, order kept."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise InputError(f"no protocol given; choose from {', '.join(_PROTOCOLS)}")
    return [get_protocol(n) for n in dict.fromkeys(names)]


_AZ = "AzulEye/CNN-Failures CheckTranslationInvariance.py JaggedNess"
_ZH = "adobe/antialiased-cnns main.py"

for _protocol in (
    Protocol("crop", "diagonal 1-pixel shifts of an S x S window in the (S + m) square: content only (the paper's Crop)"),
    Protocol("black", "the image (longer side E) pasted on a black S x S canvas, moved diagonally 1 pixel per view (the paper's Black)",
             needs_canvas=True),
    Protocol("inpaint", "as black, with the background filled by normalised convolution (13-tap binomial)",
             needs_canvas=True, fill="inpaint"),
    Protocol("scale", "the image pasted centred on a black canvas, longer side E, E + 1, ..., E + m", layout="size",
             needs_canvas=True),
    Protocol("circular", "the S x S centre crop rolled diagonally with wrap-around (an upper bound)"),
    Protocol("zhang", "random pairs of S x S windows in the (S + m) square, seeded per image (Zhang 2019)",
             layout="pairs", paired=True),
    Protocol("zhang2019", "antialiased-cnns -es: Resize(S + 32) truncating, CenterCrop(S + 32) rounding, "
             "P pairs of S x S windows with corners drawn from 0..31", layout="zhang2019-pairs", paired=True,
             definition="zhang2019", source=f"{_ZH} validate_shift (-es)"),
    Protocol("zhang2019-diagonal", "antialiased-cnns -ed: the zhang2019 square, 33 S x S windows at (t, t), t = 0..32",
             layout="zhang2019-diagonal", definition="zhang2019", source=f"{_ZH} validate_diagonal (-ed)"),
    Protocol("azulay2019-crop", "Azulay & Weiss Crop: centre crop (aspect 3/4..4/3) squashed to (S + 10)^2, "
             "9 S x S windows at (t, t) around the centre", layout="azulay-shift",
             definition="azulay2019", source=f"{_AZ} (Crop branch, RandomResizedCrop(234, scale=(1, 1)))"),
    Protocol("azulay2019-black", "Azulay & Weiss Black: the crop squashed to int(S / 1.3)^2 on a canvas that is 0 after "
             "normalisation (the mean colour), moved diagonally 1 pixel per view around the centre",
             layout="azulay-shift", needs_canvas=True, fill="mean",
             definition="azulay2019", source=f"{_AZ} (black-background branch, RandomResizedCenterCrop(int(224 / 1.3)))"),
    Protocol("azulay2019-inpaint", "azulay2019-black's geometry on a black canvas, filled by the original inpainting "
             "(12-tap binomial, 'same' convolution, passes until <= 200 black pixels)", layout="azulay-shift",
             needs_canvas=True, fill="azulay2019", definition="azulay2019",
             source="AzulEye/CNN-Failures InpaintingFunction.py inpainting(im, x, y, h, w) with inpaint(im, mask, 10)"),
    Protocol("azulay2019-scale", "azulay2019-black's squashed square at sides int(S / 1.3) - 4 .. + 4, centred on the "
             "mean-colour canvas", layout="azulay-size", needs_canvas=True, fill="mean",
             definition="azulay2019", source=f"{_AZ} (black-background branch; no scale code is published: see docs/literature.md)"),
):
    register_protocol(_protocol)
