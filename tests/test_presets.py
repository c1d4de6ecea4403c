"""The paper presets (docs/literature.md), pixel for pixel against the original code's geometry
built here independently: torchvision's own transforms, the originals' slicing loops, and a
transcription of the Azulay & Weiss inpainting with scipy. Also: the catalogue imports no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import convolve2d
from torchvision import transforms as T

from biasprobe.analysis import PAIRED_PROTOCOLS
from biasprobe.core.errors import InputError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.invariance.catalogue import list_protocols, paired_protocol_names
from biasprobe.invariance.protocols import ProtocolParams, get_protocol
from biasprobe.invariance.views import prepare_views, views_to_input

S = 224
PARAMS = ProtocolParams(max_shift=32, embed_size=168, input_size=S, pairs_per_image=5, run_seed=3)
IMAGENET = Preprocessing(input_size=S, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop_pct=0.875, max_shift=32)
NORMALISE = T.Normalize(mean=IMAGENET.mean, std=IMAGENET.std)
IDS = ["0123456789abcdef", "fedcba9876543210", "00000000deadbeef"]
# Sizes chosen so torchvision's truncation and round-half-to-even matter: 256 * 301 / 250 = 308.2,
# 256 * 333 / 250 = 340.99 (truncates to 340: the centre crop is off by 42 = 2 * 21 -> 21),
# 257 x 400 (shorter side 257 -> the crop of a 256 + 143 = 399: (399 - 256) / 2 = 71.5 -> 72),
# and aspect ratios outside [3/4, 4/3] (the RandomResizedCrop fallback) and inside it (square).
SIZES = [(301, 250), (250, 333), (257, 400), (400, 257), (300, 300)]


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(1, 256, size=(h, w, 3), dtype=np.uint8)
    arr[h // 3 : h // 3 + 30, w // 4 : w // 4 + 30] = 0  # a black block: more than 200 black pixels
    return Image.fromarray(arr, "RGB")


def _as_float(views: torch.Tensor) -> torch.Tensor:
    return views[:, :3].float() / 255.0


def test_the_catalogue_and_help_import_no_torch():
    code = (
        "import sys\n"
        "from biasprobe.invariance.catalogue import list_protocols\n"
        "assert len(list_protocols(presets=True)) == 12\n"
        "from biasprobe.cli import main\n"
        "for command in ('invariance', 'layers'):\n"
        "    try:\n"
        "        main([command, '--help'])\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0\n"
        "heavy = [m for m in ('torch', 'numpy', 'biasprobe.invariance.run', 'biasprobe.invariance.protocols') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "azulay2019-inpaint" in done.stdout and "zhang2019-diagonal" in done.stdout


def test_one_catalogue_names_every_protocol_and_its_definition():
    own = [p.name for p in list_protocols()]
    presets = [p for p in list_protocols(presets=True) if p.name not in own]
    assert own == ["crop", "black", "inpaint", "scale", "circular", "zhang"]
    assert {p.definition for p in presets} == {"azulay2019", "zhang2019"}
    assert all(p.source for p in presets)
    assert tuple(PAIRED_PROTOCOLS) == paired_protocol_names() == ("zhang", "zhang2019")


@pytest.mark.parametrize("size", SIZES)
def test_zhang2019_is_resize_256_centre_crop_256_and_windows_from_0_to_31(size):
    img = _photo(*size)
    square = T.ToTensor()(T.CenterCrop(256)(T.Resize(256)(img)))  # the original's val_loader with -es
    protocol = get_protocol("zhang2019")
    for image_id in IDS:
        views = _as_float(protocol.build(img, image_id, PARAMS).pixels)
        dx, dy = protocol.offsets(image_id, PARAMS)
        assert views.shape == (10, 3, S, S) and len(dx) == 10
        for v, (x, y) in enumerate(zip(dx.tolist(), dy.tolist(), strict=True)):
            assert 0 <= x <= 31 and 0 <= y <= 31
            assert torch.equal(views[v], square[:, y : y + S, x : x + S])


def test_zhang2019_draws_follow_randint_32_per_image_and_seed():
    protocol = get_protocol("zhang2019")
    draws = np.concatenate([np.concatenate(protocol.offsets(f"{i:08x}00000000", PARAMS)) for i in range(400)])
    assert draws.min() == 0 and draws.max() == 31  # np.random.randint(32): 0..31, never 32
    assert np.bincount(draws, minlength=32).min() > 0.5 * len(draws) / 32
    other = ProtocolParams(**{**PARAMS.to_dict(), "run_seed": 4})
    assert not np.array_equal(np.concatenate(protocol.offsets(IDS[0], PARAMS)), np.concatenate(protocol.offsets(IDS[0], other)))


@pytest.mark.parametrize("size", SIZES[:3])
def test_zhang2019_diagonal_is_33_windows_on_the_diagonal(size):
    img = _photo(*size)
    square = T.ToTensor()(T.CenterCrop(256)(T.Resize(256)(img)))
    views = _as_float(get_protocol("zhang2019-diagonal").build(img, IDS[0], PARAMS).pixels)
    expected = torch.stack([square[:, off : off + S, off : off + S] for off in range(33)])  # validate_diagonal, D = 33
    assert torch.equal(views, expected)


def _azulay_loader(side: int, img: Image.Image) -> torch.Tensor:
    """``RandomResizedCrop(side, scale=(1, 1))``: for these images torchvision's deterministic
    central crop (aspect outside [3/4, 4/3]) or the whole image (square)."""
    return T.ToTensor()(T.RandomResizedCrop(side, scale=(1.0, 1.0))(img))[None]


@pytest.mark.parametrize("size", SIZES)
def test_azulay2019_crop_is_the_originals_crop_loop(size):
    img = _photo(*size)
    inp = _azulay_loader(234, img)
    center = int((inp.shape[3] - 224 - 1) / 2)
    windows = []
    for c in range(center - 4, center + 4):  # CheckTranslationInvariance.py, the Crop branch
        windows.append(inp[:, :, c : c + 224, c : c + 224])
        last = inp[:, :, c + 1 : c + 224 + 1, c + 1 : c + 224 + 1]
    expected = torch.cat([*windows, last])
    views = _as_float(get_protocol("azulay2019-crop").build(img, IDS[0], PARAMS).pixels)
    assert torch.equal(views, expected)


def _azulay_canvases(img: Image.Image) -> list[tuple[torch.Tensor, int]]:
    """The black-background branch with s = 1.3: each view's normalised input and its paste corner."""
    inp = NORMALISE(_azulay_loader(int(224 / 1.3), img)[0])[None]
    center = int((224 - inp.shape[3] - 1) / 2)
    out = []
    for c in range(center - 4, center + 4):
        inputs1 = torch.zeros((1, 3, 224, 224))
        inputs1[:, :, c : c + inp.shape[3], c : c + inp.shape[3]] = inp
        out.append((inputs1[0], c))
    inputs2 = torch.zeros((1, 3, 224, 224))
    c = center + 3
    inputs2[:, :, c + 1 : c + inp.shape[3] + 1, c + 1 : c + inp.shape[3] + 1] = inp
    out.append((inputs2[0], c + 1))
    return out


def _model_input(name: str, img: Image.Image) -> torch.Tensor:
    protocol = get_protocol(name)
    pixels = prepare_views(img, None, IDS[0], protocols=(name,), params=PARAMS)  # type: ignore[arg-type]
    return views_to_input(pixels, [protocol.fill] * pixels.shape[0], IMAGENET)


@pytest.mark.parametrize("size", SIZES)
def test_azulay2019_black_pastes_on_a_canvas_that_is_zero_after_normalisation(size):
    img = _photo(*size)
    expected = torch.stack([view for view, _ in _azulay_canvases(img)])
    got = _model_input("azulay2019-black", img)
    assert got.shape == expected.shape == (9, 3, S, S)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert bool((got[:, :, 0, 0] == 0).all())  # the background is exactly the mean colour


def _transcribed_inpaint(im: np.ndarray, mask: np.ndarray, w_size: int) -> np.ndarray:
    """InpaintingFunction.py ``inpaint``, transcribed."""
    im_f = np.zeros_like(im)
    for chan in range(3):
        k = np.expand_dims([0.5, 0.5], 0)
        k0 = k
        channel = im[:, :, chan]
        for _ in range(w_size):
            k = np.array(convolve2d(k, k0))
        im_b = convolve2d(convolve2d(channel * mask, k, "same"), k.T, "same")
        mask_b = convolve2d(convolve2d(mask, k, "same"), k.T, "same")
        im_int = im_b / (mask_b + (mask_b == 0))
        im_f[:, :, chan] = mask * channel + (1 - mask) * im_int
    return im_f


def _transcribed_inpainting(im: np.ndarray, x: int, y: int, h: int, w: int) -> np.ndarray:
    """InpaintingFunction.py ``inpainting``, transcribed."""
    mask = np.zeros_like(im)
    mask[y : y + h, x : x + w, 0:3] = 1
    mask = mask[:, :, 0]
    bw = im[:, :, 0] + im[:, :, 1] + im[:, :, 2]
    o = 0
    while np.sum(bw == 0) > 200 and o < 80:
        o += 1
        im = _transcribed_inpaint(im, mask, 10)
        bw = im[:, :, 0] + im[:, :, 1] + im[:, :, 2]
        mask = np.ones_like(bw)
        mask[bw == 0] = 0
    return im


@pytest.mark.parametrize("size", [(301, 250), (300, 300)])
def test_azulay2019_inpaint_is_the_original_inpainting_of_the_black_canvas(size):
    img = _photo(*size)
    side = int(224 / 1.3)
    patch = T.ToTensor()(T.RandomResizedCrop(side, scale=(1.0, 1.0))(img)).numpy().transpose(1, 2, 0).astype(np.float64)
    got = _model_input("azulay2019-inpaint", img)
    for t, (_, c) in enumerate(_azulay_canvases(img)):
        if t not in (0, 8):
            continue
        canvas = np.zeros((224, 224, 3))
        canvas[c : c + side, c : c + side] = patch
        filled = _transcribed_inpainting(canvas, c, c, side, side)
        expected = NORMALISE(torch.from_numpy(filled.transpose(2, 0, 1).copy()).float())
        torch.testing.assert_close(got[t], expected, rtol=0, atol=2e-5)
    assert not bool((got[:, :, 0, 0] == NORMALISE(torch.zeros(3, 1, 1))[:, 0, 0]).all())  # the corner was filled


@pytest.mark.parametrize("size", SIZES[:3])
def test_azulay2019_scale_grows_the_squashed_crop_about_the_black_branchs_centre(size):
    img = _photo(*size)
    got = _model_input("azulay2019-scale", img)
    protocol = get_protocol("azulay2019-scale")
    sides = protocol.offsets(IDS[0], PARAMS)[0].tolist()
    assert sides == list(range(int(224 / 1.3) - 4, int(224 / 1.3) + 5))
    for t, side in enumerate(sides):
        canvas = torch.zeros((3, 224, 224))
        at = int((224 - side - 1) / 2)
        canvas[:, at : at + side, at : at + side] = NORMALISE(_azulay_loader(side, img)[0])
        torch.testing.assert_close(got[t], canvas, rtol=0, atol=1e-6)


def test_presets_fix_their_own_geometry_and_refuse_inputs_too_small():
    params = ProtocolParams(max_shift=1, embed_size=1, input_size=S)  # --max-shift / --embed-size do not apply
    assert get_protocol("azulay2019-black").n_views(params) == 9
    assert get_protocol("zhang2019-diagonal").n_views(params) == 33
    assert get_protocol("zhang2019").n_views(params) == 10
    for name in ("azulay2019-crop", "azulay2019-black", "azulay2019-inpaint", "azulay2019-scale", "zhang2019"):
        get_protocol(name).check(params)
    with pytest.raises(InputError, match="does not fit a 32-pixel input"):
        get_protocol("azulay2019-black").check(ProtocolParams(max_shift=4, embed_size=24, input_size=32))
    small = ProtocolParams(max_shift=8, embed_size=36, input_size=48)
    views = get_protocol("azulay2019-black").build(_photo(60, 50), IDS[0], small)
    assert views.pixels.shape == (9, 3, 48, 48) and views.mask is not None


def test_the_report_names_a_presets_definition_beside_its_figures():
    from biasprobe.report.summary import definition_text

    assert definition_text("crop") == "" and definition_text("unknown") == ""
    assert definition_text("zhang2019").startswith("zhang2019 preset: adobe/antialiased-cnns main.py validate_shift")


def test_presets_through_the_model_record_their_definition(lite0):
    from biasprobe.data.sources import BUILTIN_PHOTOS, open_source
    from biasprobe.invariance import measure_invariance

    result = measure_invariance(lite0, open_source(BUILTIN_PHOTOS, limit=2), protocols="zhang2019,azulay2019-black,crop",
                                params=ProtocolParams.for_model(lite0.preprocessing, max_shift=2), progress=False)
    figures = result.summary.protocols
    assert figures["zhang2019"]["definition"] == "zhang2019" and figures["crop"]["definition"] == "biasprobe"
    assert "CheckTranslationInvariance.py" in figures["azulay2019-black"]["source"]
    images = result.images.set_index("protocol")
    assert images.loc["zhang2019", "pairs"].tolist() == [5, 5] and images.loc["azulay2019-black", "pairs"].tolist() == [8, 8]
    views = result.views[result.views["protocol"] == "zhang2019"]
    assert len(views) == 20 and views["dx"].between(0, 31).all() and views["dy"].between(0, 31).all()
