"""docs/protocols.md section 1: decoding rules, with expected pixel values computed by hand."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biasprobe.core.errors import ImageLoadError
from biasprobe.core.hashing import image_id
from biasprobe.core.rounding import rnd
from biasprobe.data.loading import decode_rgb, load_image
from biasprobe.data.transforms import centre_crop, embed_view, resize_longer, resize_shorter


def _png(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def test_rnd_rounds_half_up_not_to_even() -> None:
    assert [rnd(x) for x in (0.5, 1.5, 2.5, -0.5, 2.4999)] == [1, 2, 3, 0, 2]
    assert round(2.5) == 2  # the reason rnd exists


def test_rgba_is_composited_on_black_rounding_half_up() -> None:
    arr = np.zeros((1, 3, 4), np.uint8)
    arr[0, 0] = (255, 100, 3, 128)  # 255*128/255 = 128; 100*128/255 = 50.196 -> 50; 3*128/255 = 1.506 -> 2
    arr[0, 1] = (200, 51, 1, 0)  # fully transparent -> black
    arr[0, 2] = (10, 20, 30, 255)  # opaque -> unchanged
    out = np.asarray(decode_rgb(_png(Image.fromarray(arr, "RGBA"))))
    assert out[0, 0].tolist() == [128, 50, 2]
    assert out[0, 1].tolist() == [0, 0, 0]
    assert out[0, 2].tolist() == [10, 20, 30]


def test_alpha_rounding_near_the_half() -> None:
    # x * a / 255 is never exactly k + 0.5 for integers, so check either side of 0.5:
    # 1 * 127 / 255 = 0.498 -> 0 and 1 * 128 / 255 = 0.502 -> 1.
    arr = np.array([[[1, 1, 1, 127], [1, 1, 1, 128]]], np.uint8)
    out = np.asarray(decode_rgb(_png(Image.fromarray(arr, "RGBA"))))
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 1].tolist() == [1, 1, 1]


def test_la_grayscale_with_alpha() -> None:
    img = Image.fromarray(np.array([[[200, 64]]], np.uint8), "LA")  # 200*64/255 = 50.196 -> 50
    assert np.asarray(decode_rgb(_png(img)))[0, 0].tolist() == [50, 50, 50]


def test_palette_with_transparency_composites_on_black() -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    data = _png(img, transparency=0)  # index 0 (red) is fully transparent
    out = np.asarray(decode_rgb(data))
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 1].tolist() == [0, 0, 255]


def test_grayscale_is_replicated() -> None:
    img = Image.fromarray(np.array([[0, 7, 255]], np.uint8), "L")
    out = np.asarray(decode_rgb(_png(img)))
    assert out[0].tolist() == [[0, 0, 0], [7, 7, 7], [255, 255, 255]]


def test_16_bit_grayscale_is_shifted_not_clipped() -> None:
    values = np.array([[0, 255, 256, 1000, 65535]], np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    out = np.asarray(decode_rgb(_png(img)))
    # value >> 8: 0, 0, 1, 3, 255 (Pillow's own convert would clip 1000 and 65535 to white)
    assert out[0, :, 0].tolist() == [0, 0, 1, 3, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_cmyk_goes_through_pillow_convert() -> None:
    img = Image.new("CMYK", (1, 1), (0, 255, 255, 0))  # pure red in Pillow's naive conversion
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=100)
    out = np.asarray(decode_rgb(buf.getvalue()))
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert out.tolist() == expected.tolist()
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 50


def test_exif_orientation_is_applied() -> None:
    arr = np.zeros((2, 3, 3), np.uint8)  # 3 wide, 2 high; bright pixel at top-left
    arr[0, 0] = 255
    img = Image.fromarray(arr, "RGB")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = np.asarray(decode_rgb(_png(img, exif=exif.tobytes())))
    assert out.shape == (3, 2, 3)
    # Orientation 6: the top-left pixel moves to the top-right after a clockwise turn.
    assert out[0, 1].tolist() == [255, 255, 255]
    assert out.sum() == 255 * 3


def test_animated_image_uses_first_frame() -> None:
    frames = [Image.new("RGB", (2, 2), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = np.asarray(decode_rgb(buf.getvalue()))
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 50


def test_image_id_is_sha1_prefix_of_bytes(tmp_path: Path) -> None:
    data = _png(Image.new("RGB", (4, 4), (1, 2, 3)))
    (tmp_path / "a.png").write_bytes(data)
    img, iid = load_image(tmp_path / "a.png")
    assert iid == hashlib.sha1(data).hexdigest()[:16] == image_id(data)
    assert len(iid) == 16 and img.size == (4, 4)


def test_undecodable_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match=r"cannot decode image .*broken\.png"):
        load_image(bad)


def test_resize_rules_round_half_up() -> None:
    img = Image.new("RGB", (300, 201))
    # shorter side 201 -> 56: other = rnd(300 * 56 / 201) = rnd(83.58) = 84
    assert resize_shorter(img, 56).size == (84, 56)
    # longer side 300 -> 36: other = rnd(201 * 36 / 300) = rnd(24.12) = 24
    assert resize_longer(img, 36).size == (36, 24)
    half = Image.new("RGB", (10, 5))  # 5 * 3 / 10 = 1.5 -> 2 (banker's would give 2 too); 7: 3.5 -> 4
    assert resize_longer(half, 7).size == (7, 4)


def test_centre_crop_uses_floor_division() -> None:
    arr = np.arange(5 * 6, dtype=np.uint8).reshape(5, 6)
    img = Image.fromarray(np.stack([arr] * 3, -1), "RGB")
    out = np.asarray(centre_crop(img, 3))[..., 0]
    # left = (6 - 3) // 2 = 1, top = (5 - 3) // 2 = 1
    assert out.tolist() == arr[1:4, 1:4].tolist()


def test_embed_view_is_exact_crop_when_no_resize_needed() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (56, 56, 3), dtype=np.uint8)
    out = embed_view(Image.fromarray(arr, "RGB"), input_size=48, crop_pct=48 / 56)
    assert out.shape == (3, 48, 48) and out.dtype == np.float32
    assert np.array_equal(out, arr[4:52, 4:52].transpose(2, 0, 1).astype(np.float32) / 255)
