"""Geometry of every protocol (docs/protocols.md section 2) on synthetic images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.invariance.inpaint import binomial_kernel, inpaint_fill, inpaint_fill_dense, mask_to_rects
from biasprobe.invariance.protocols import (
    ProtocolParams,
    get_protocol,
    list_protocols,
    parse_protocols,
    zhang_offsets,
)
from biasprobe.invariance.views import prepare_views

# S = 16, m = 4, E = 8: B = 20, black offset o = (16 - 8 - 4) // 2 = 2.
P = ProtocolParams(max_shift=4, embed_size=8, input_size=16, pairs_per_image=3, run_seed=0)
ID = "0123456789abcdef"


def _image(w: int, h: int, bright: tuple[int, int], base: int = 40) -> Image.Image:
    """A flat grey RGB image with one white pixel at (row, col)."""
    arr = np.full((h, w, 3), base, dtype=np.uint8)
    arr[bright] = 255
    return Image.fromarray(arr, "RGB")


def _where(view: torch.Tensor) -> tuple[int, int]:
    flat = int(view[0].argmax())
    return divmod(flat, view.shape[-1])


def test_registry_lists_all_six_and_parses_lists():
    assert [p.name for p in list_protocols()] == ["crop", "black", "inpaint", "scale", "circular", "zhang"]
    assert [p.name for p in parse_protocols("crop, black,crop")] == ["crop", "black"]
    with pytest.raises(InputError, match="unknown protocol 'shift'"):
        parse_protocols("crop,shift")


def test_params_defaults_come_from_the_model():
    prep = Preprocessing(224, (0.5,) * 3, (0.5,) * 3, 0.875, 32)
    assert ProtocolParams.for_model(prep) == ProtocolParams(32, 168, 224, 5, 0)
    world = Preprocessing(48, (0.5,) * 3, (0.5,) * 3, 48 / 56, 8)
    assert (ProtocolParams.for_model(world).max_shift, ProtocolParams.for_model(world).embed_size) == (8, 36)


def test_canvas_requirement_is_a_clear_error():
    bad = ProtocolParams(max_shift=8, embed_size=10, input_size=16)
    for name in ("black", "inpaint", "scale"):
        with pytest.raises(InputError, match=r"10 \+ 8 > 16"):
            get_protocol(name).check(bad)
    get_protocol("crop").check(bad)  # crop needs no canvas
    with pytest.raises(InputError, match="at least 1"):
        get_protocol("crop").check(ProtocolParams(0, 8, 16))


def test_crop_moves_a_bright_pixel_diagonally_by_one_per_view():
    views = get_protocol("crop").build(_image(20, 20, (10, 12)), ID, P).pixels
    assert views.shape == (5, 3, 16, 16) and views.dtype == torch.uint8
    assert [_where(v) for v in views] == [(10 - s, 12 - s) for s in range(5)]


def test_crop_resizes_the_shorter_side_to_s_plus_m_and_centres():
    # 40 x 20 -> 40 x 20 after resize of the shorter side to 20; centre crop left = (40 - 20) // 2 = 10.
    views = get_protocol("crop").build(_image(40, 20, (5, 17)), ID, P).pixels
    assert _where(views[0]) == (5, 7)


def test_circular_rolls_with_wrap_around():
    views = get_protocol("circular").build(_image(16, 16, (3, 14)), ID, P).pixels
    assert [_where(v) for v in views] == [((3 + s) % 16, (14 + s) % 16) for s in range(5)]


def test_black_pastes_at_the_contract_offsets_and_the_rest_is_black():
    img = _image(8, 4, (1, 6))  # already longer side E = 8: w = 8, h = 4
    views = get_protocol("black").build(img, ID, P)
    for s in range(5):
        x, y = 2 + s + (8 - 8) // 2, 2 + s + (8 - 4) // 2
        view = views.pixels[s]
        assert _where(view) == (y + 1, x + 6)
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[y : y + 4, x : x + 8] = True
        assert torch.equal(views.mask[s], inside)
        assert bool((view[:, ~inside] == 0).all()) and bool((view[:, inside] > 0).all())


def test_scale_grows_the_pasted_image_one_pixel_per_view_centred():
    img = Image.fromarray(np.full((10, 20, 3), 200, dtype=np.uint8), "RGB")  # aspect 2:1
    views = get_protocol("scale").build(img, ID, P)
    for s in range(5):
        w = 8 + s
        h = int(np.floor(10 * w / 20 + 0.5))
        x, y = (16 - w) // 2, (16 - h) // 2
        ys, xs = torch.nonzero(views.pixels[s, 0]).T
        assert (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1) == (y, y + h, x, x + w)
        assert torch.equal(views.mask[s], views.pixels[s, 0] > 0)
    np.testing.assert_array_equal(get_protocol("scale").offsets(ID, P)[0], np.arange(8, 13))


def test_zhang_offsets_are_pinned_for_an_id_and_seed():
    assert zhang_offsets(ID, P).tolist() == [[0, 2, 0, 1], [2, 0, 1, 2], [2, 4, 3, 2]]
    seeded = ProtocolParams(4, 8, 16, 3, run_seed=7)
    assert zhang_offsets(ID, seeded).tolist() == [[0, 1, 0, 2], [1, 0, 3, 3], [1, 1, 1, 2]]
    rng = np.random.default_rng([0, int(ID[:8], 16)])
    assert zhang_offsets(ID, P).tolist() == [rng.integers(0, 5, size=4).tolist() for _ in range(3)]


def test_zhang_views_are_the_windows_at_the_drawn_offsets():
    img = _image(20, 20, (10, 12))
    views = get_protocol("zhang").build(img, ID, P).pixels
    assert views.shape == (6, 3, 16, 16)
    for i, (h1, w1, h2, w2) in enumerate(zhang_offsets(ID, P).tolist()):
        assert _where(views[2 * i]) == (10 - h1, 12 - w1)
        assert _where(views[2 * i + 1]) == (10 - h2, 12 - w2)
    dx, dy = get_protocol("zhang").offsets(ID, P)
    assert dy.tolist()[:2] == [0, 0] and dx.tolist()[:2] == [2, 1]


def _reference_fill(img: np.ndarray, mask: np.ndarray, passes: int = 80) -> np.ndarray:
    """The definition written out with numpy loops (float64)."""
    k = binomial_kernel()
    img = img.astype(np.float64) * mask
    known = mask.astype(np.float64)

    def blur(a: np.ndarray) -> np.ndarray:
        rows = np.array([np.convolve(r, k, mode="same") for r in a])
        return np.array([np.convolve(c, k, mode="same") for c in rows.T]).T

    for _ in range(passes):
        if known.all():
            break
        den = blur(known)
        nums = [blur(channel * known) for channel in img]
        new = (den > 0) & (known == 0)
        for c in range(img.shape[0]):
            img[c][new] = nums[c][new] / den[new]
        known[new] = 1
    return img


def test_binomial_kernel_is_thirteen_taps_summing_to_one():
    k = binomial_kernel()
    assert k.shape == (13,) and k.sum() == pytest.approx(1.0)
    assert k[0] == pytest.approx(1 / 4096) and k[6] == pytest.approx(924 / 4096)


@pytest.mark.parametrize("rect", [(5, 14, 3, 25), (0, 4, 27, 30), (10, 30, 0, 30), (12, 13, 14, 15)])
def test_inpaint_fill_matches_a_numpy_reference(rect):
    rng = np.random.default_rng(1)
    img = rng.random((3, 30, 30), dtype=np.float32)
    mask = np.zeros((30, 30), dtype=bool)
    y0, y1, x0, x1 = rect
    mask[y0:y1, x0:x1] = True
    want = _reference_fill(img, mask)
    fast = inpaint_fill(torch.from_numpy(img)[None], torch.tensor([rect]))[0].numpy()
    dense = inpaint_fill_dense(torch.from_numpy(img)[None], torch.from_numpy(mask)[None])[0].numpy()
    np.testing.assert_allclose(fast, want, atol=2e-6)
    np.testing.assert_allclose(dense, want, atol=2e-6)
    np.testing.assert_array_equal(fast[:, mask], img[:, mask])  # the pasted image is untouched
    assert (fast > 0).all()  # every background pixel filled
    assert mask_to_rects(torch.from_numpy(mask)[None]).tolist() == [list(rect)]


def test_inpaint_fill_in_one_batch_is_each_view_alone():
    """Rectangles that reach the edges after different numbers of passes, rows and columns apart."""
    rects = [(5, 14, 3, 25), (0, 4, 27, 30), (10, 30, 0, 30), (12, 13, 14, 15)]
    img = torch.from_numpy(np.random.default_rng(2).random((4, 3, 30, 30), dtype=np.float32))
    batch = inpaint_fill(img, torch.tensor(rects))
    for i, rect in enumerate(rects):
        assert torch.equal(batch[i], inpaint_fill(img[i : i + 1], torch.tensor([rect]))[0])
    masks = torch.zeros(4, 30, 30, dtype=torch.bool)
    for i, (y0, y1, x0, x1) in enumerate(rects):
        masks[i, y0:y1, x0:x1] = True
    for passes in (1, 2):  # stopped early: the same partial fill as the definition
        torch.testing.assert_close(inpaint_fill(img, torch.tensor(rects), max_passes=passes),
                                   inpaint_fill_dense(img, masks, max_passes=passes), atol=2e-6, rtol=0)  # fmt: skip


def test_inpaint_views_keep_the_photo_and_fill_the_background():
    img = _image(16, 8, (2, 12), base=100)  # resized to 8 x 4
    block = prepare_views(img, None, ID, protocols=("inpaint",), params=P)
    assert block.shape == (5, 4, 16, 16)
    x = block[:, :3].float() / 255
    mask = block[:, 3] > 0
    filled = inpaint_fill(x, mask_to_rects(mask))
    assert torch.equal(filled[mask[:, None].expand_as(filled)], x[mask[:, None].expand_as(x)])
    assert bool((filled > 0).all())
    # background far from the bright pixel converges to the flat grey
    assert float(filled[0, :, 15, 0].sub(100 / 255).abs().max()) < 0.02


def test_prepare_views_concatenates_protocols_and_refuses_tiny_images():
    img = _image(20, 20, (10, 12))
    block = prepare_views(img, None, ID, protocols=("crop", "zhang"), params=P)
    assert block.shape == (5 + 6, 3, 16, 16)
    with pytest.raises(InputError, match="at least 8"):
        prepare_views(_image(5, 30, (0, 0)), None, ID, protocols=("crop",), params=P)
