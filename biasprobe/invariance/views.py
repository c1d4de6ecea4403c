"""The views of one image as they travel from a decoding worker to the batching engine.

``prepare_views`` runs in the worker: every protocol's views of one image, concatenated, as
one uint8 tensor ``(V, C, S, S)``. C is 3, or 4 when a protocol fills its background
(``inpaint``): channel 3 is then the pasted rectangle (255 inside), the inpainting mask.
``views_to_input`` runs in the main process, on the device the views were moved to as uint8:
uint8 views -> the model's normalised float input, with the background of filling protocols
filled (docs/protocols.md section 2; the presets' fills, docs/literature.md): inpainted before
normalisation (``inpaint``, ``azulay2019``), or set to exactly 0 after it (``mean``: the
originals' zero canvas, the model's mean colour, which no 8-bit value gives exactly).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.data.sources import ImageRecord
from biasprobe.data.transforms import normalise_
from biasprobe.invariance.catalogue import MIN_SIDE, Protocol, ProtocolParams, get_protocol
from biasprobe.invariance.inpaint import azulay_inpaint, inpaint_fill, mask_to_rects

__all__ = ["prepare_views", "views_to_input"]


def prepare_views(
    image: Image.Image, _record: ImageRecord, image_id: str, *, protocols: tuple[str, ...], params: ProtocolParams
) -> torch.Tensor:
    """Worker side: every protocol's views of one image, concatenated, uint8 (V, C, S, S)."""
    if min(image.size) < MIN_SIDE:
        raise InputError(f"image is {image.size[0]}x{image.size[1]} pixels; at least {MIN_SIDE} a side is needed")
    chosen = [get_protocol(name) for name in protocols]
    with one_thread():
        return _views(image, image_id, chosen, params)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread for the duration: building views is many small copies, and in the
    main process (no decoding workers, the CPU default) torch would split each across the
    forward pass's threads. Measured on 2 busy cores: crop and black views of a photo in 14 ms on
    one thread, 70-800 ms on two (the threads wait for each other). Copies only: the views are the
    same bytes either way."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _views(image: Image.Image, image_id: str, chosen: list[Protocol], params: ProtocolParams) -> torch.Tensor:
    with_mask = any(p.fill for p in chosen)
    blocks = []
    for protocol in chosen:
        views = protocol.build(image, image_id, params)
        block = views.pixels
        if with_mask:
            if views.mask is None:
                alpha = torch.full((block.shape[0], 1, *block.shape[2:]), 255, dtype=torch.uint8)
            else:
                alpha = views.mask[:, None].to(torch.uint8) * 255
            block = torch.cat([block, alpha], dim=1)
        blocks.append(block)
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


def views_to_input(pixels: torch.Tensor, fill: Sequence[bool | str], preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 views (n, C, S, S) -> normalised float32 (n, 3, S, S) in channels_last, on the views' device.

    ``fill[i]`` says how view i's background is filled (its channel 3 is the mask): one of the
    catalogue's ``FILLS`` (``""`` or False: not at all; True means ``"inpaint"``).
    """
    kinds = ["inpaint" if f is True else (f or "") for f in fill]
    # channels_last from the start (cheap on uint8); later steps keep the layout.
    x = pixels[:, :3].contiguous(memory_format=torch.channels_last).float().div_(255.0)
    if any(kinds):
        rows = {kind: torch.tensor([i for i, k in enumerate(kinds) if k == kind], device=pixels.device)
                for kind in set(kinds) if kind}  # no mask indexing: no device sync
        if "inpaint" in rows:
            x[rows["inpaint"]] = inpaint_fill(x[rows["inpaint"]], mask_to_rects(pixels[rows["inpaint"], 3] > 0))
        if "azulay2019" in rows:
            x[rows["azulay2019"]] = azulay_inpaint(x[rows["azulay2019"]], pixels[rows["azulay2019"], 3] > 0)
    out = normalise_(x, preprocessing.mean, preprocessing.std)  # in place: no two more batch-sized tensors
    if "mean" in kinds:
        inside = pixels[rows["mean"], 3:4] > 0
        out[rows["mean"]] = torch.where(inside, out[rows["mean"]], torch.zeros((), dtype=out.dtype, device=out.device))
    return out
