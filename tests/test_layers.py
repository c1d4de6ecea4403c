"""The layers stage: probe points, the known answers of the sampling theorem, tables, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from timm.layers import BlurPool2d
from torch import nn

from biasprobe.cli import main
from biasprobe.core.errors import InputError
from biasprobe.core.io import companion
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.schemas import LAYERS_TABLE
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import parts_dir_for
from biasprobe.invariance import measure_invariance
from biasprobe.invariance.protocols import ProtocolParams
from biasprobe.layers import (
    EMBEDDING,
    LayersSummary,
    cosine_distance,
    find_probe_points,
    measure_layers,
    model_probes,
    run_layers,
    spread,
)
from biasprobe.models import from_module
from biasprobe.world.nets import build_net, net_config

S = 32
PREP = Preprocessing(S, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, 4)
PARAMS = ProtocolParams(max_shift=4, embed_size=24, input_size=S)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="circular", bias=False)


def _circular_net(middle: str = "none") -> nn.Module:
    """Circular-padded convolutions without bias, global average pooling, a linear head; ``middle`` is
    'none' (stride 1 throughout), 'stride' (one stride-2 conv) or 'blur' (conv, then a
    circular BlurPool of stride 2 in its place)."""
    torch.manual_seed(0)
    mid: list[nn.Module] = {
        "none": lambda: [_conv(8, 8)],
        "stride": lambda: [_conv(8, 8, 2)],
        "blur": lambda: [_conv(8, 8), nn.ReLU(), BlurPool2d(8, filt_size=3, stride=2, pad_mode="circular")],
    }[middle]()
    return nn.Sequential(_conv(3, 8), nn.ReLU(), _conv(8, 8), nn.ReLU(), *mid, nn.ReLU(), _conv(8, 8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))  # fmt: skip


def _model(middle: str = "none"):
    return from_module(_circular_net(middle), name=f"circ_{middle}", preprocessing=PREP)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("layer_imgs")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, size=(40 + i, 44, 3), dtype=np.uint8), "RGB").save(root / f"img{i}.png")
    (root / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8), "RGB").save(root / "tiny.png")
    return root


def _measure(model, images, protocols="circular", **kwargs):
    defaults = dict(params=PARAMS, runtime=Runtime.create(threads=2), batch_size=7, chunk_images=4, progress=False)
    return measure_layers(model, open_source(images), protocols=protocols, **{**defaults, **kwargs})


def _by_probe(table: pd.DataFrame, protocol: str = "circular") -> dict[str, pd.DataFrame]:
    rows = table[table["protocol"] == protocol]
    return {str(name): group for name, group in rows.groupby("probe", sort=False)}


# --- known answers (exact, no tuning) ---------------------------------------------------------------


def test_a_stride_1_circular_net_is_exactly_invariant_under_circular_shifts(images):
    model = _model("none")
    result = _measure(model, images)
    probes = _by_probe(result.table)
    assert list(probes) == ["7", EMBEDDING]
    for rows in probes.values():
        assert (rows["change_1"] < 1e-6).all() and (rows["change_aligned"] < 1e-6).all()
    inv = measure_invariance(model, open_source(images), protocols="circular", params=PARAMS,
                             runtime=Runtime.create(threads=2), progress=False)  # fmt: skip
    assert inv.summary.protocols["circular"]["p_change"] == 0.0


def test_one_stride_2_conv_aliases_a_1_pixel_shift_but_follows_a_2_pixel_one(images):
    result = _measure(_model("stride"), images)
    probes = _by_probe(result.table)
    assert [(p, int(r["stride"].iloc[0])) for p, r in probes.items()] == [("3", 1), ("7", 2), (EMBEDDING, 2)]
    before = probes["3"]
    assert (before["change_1"] < 1e-6).all()
    for name in ("7", EMBEDDING):  # at and after the stride
        assert (probes[name]["change_1"] > 1e-5).all(), name
        assert (probes[name]["change_aligned"] < 1e-6).all(), name


def test_blurpool_before_the_stride_reduces_the_change_at_that_probe(images):
    plain = _by_probe(_measure(_model("stride"), images).table)
    blurred = _by_probe(_measure(_model("blur"), images).table)
    stride_2 = [name for name, rows in blurred.items() if rows["stride"].iloc[0] == 2 and name != EMBEDDING]
    assert len(stride_2) == 1
    assert blurred[stride_2[0]]["change_1"].mean() < plain["7"]["change_1"].mean()


@pytest.mark.parametrize(("arch", "strides"), [("world_vgg", [1, 2, 4, 8]), ("world_resnet", [1, 2, 4, 8, 16])])
@pytest.mark.parametrize("antialias", [False, True])
def test_world_cnns_get_probe_points_with_their_strides(arch, strides, antialias):
    net = build_net(net_config(arch, antialias=antialias)).eval()
    model = from_module(net, name=arch, preprocessing=Preprocessing(48, (0.5,) * 3, (0.5,) * 3, 48 / 56, 8))
    probes = model_probes(model)
    assert [p.stride for p in probes] == [*strides, strides[-1]]
    assert [p.depth for p in probes] == list(range(len(probes)))
    assert probes[-1].name == EMBEDDING and probes[-1].channels == model.embedding_dim()
    assert probes[-2].size == 48 // strides[-1]


def test_efficientnet_lite0_gets_probe_points_up_to_stride_32(lite0):
    probes = model_probes(lite0)
    assert [p.stride for p in probes] == [2, 4, 8, 16, 32, 32]
    assert probes[-2].name == "bn2" and probes[-2].channels == 1280 and probes[-2].size == 7
    assert probes[-1].channels == 1280


def test_probe_points_of_any_module_follow_its_resolution_changes():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))  # fmt: skip
    probes = find_probe_points(net, 16)
    assert [(p.name, p.stride, p.channels, p.size) for p in probes] == [("1", 1, 4, 16), ("2", 2, 4, 8), ("4", 4, 6, 4)]


def test_cosine_distance_and_spread_follow_the_definition():
    a = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    b = np.array([[0.0, 3.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert cosine_distance(a, b).tolist() == [1.0, 0.0, 1.0, 0.0]
    first = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    # ids: the duplicate "a" counts once; pairs a-b (1), a-c and b-c (1 - 1/sqrt 2)
    assert spread(first, ["a", "b", "c", "a"]) == pytest.approx(1 - 2**-0.5)
    assert np.isnan(spread(first[:1], ["a"]))


# --- the stage: tables, summary, resume, refusals ------------------------------------------------


def test_outputs_follow_the_table_contract_and_resume_identically(images, tmp_path):
    out = tmp_path / "layers.parquet"
    model = _model("stride")
    kwargs = dict(params=PARAMS, runtime=Runtime.create(threads=2), batch_size=5, chunk_images=2, progress=False)
    first = run_layers(model, open_source(images), out, protocols="crop,circular,black,inpaint,scale", **kwargs)
    table = pd.read_parquet(out)
    assert list(table.columns) == list(LAYERS_TABLE)
    assert len(table) == 6 * 5 * 3 and not parts_dir_for(out).exists()
    assert set(pd.read_parquet(companion(out, "skipped"))["path"]) == {"broken.png", "tiny.png"}
    summary = LayersSummary.read(companion(out, "summary"))
    assert summary.total_stride == 2 and [p["stride"] for p in summary.probes] == [1, 2, 2]
    crop = summary.protocols["crop"]
    assert [e["probe"] for e in crop] == ["3", "7", EMBEDDING]
    for entry in crop:
        rows = table[(table.protocol == "crop") & (table.probe == entry["probe"])]
        assert entry["change_1"]["value"] == pytest.approx(rows["change_1"].mean())
        lo, hi = entry["change_1"]["ci"]
        assert lo <= entry["change_1"]["value"] <= hi
        assert entry["instability"]["value"] == pytest.approx(entry["change_1"]["value"] / entry["spread"])
    # a crash after some units: the re-run does only what is missing and gives the same numbers
    parts = parts_dir_for(out)
    again = measure_layers(model, open_source(images), protocols="crop,circular,black,inpaint,scale",
                           parts_dir=parts, **kwargs)  # fmt: skip
    (parts / "done" / "000001.json").unlink()
    (parts / "part_000002.parquet").write_bytes(b"damaged")
    resumed = measure_layers(model, open_source(images), protocols="crop,circular,black,inpaint,scale",
                             parts_dir=parts, **kwargs)  # fmt: skip
    pd.testing.assert_frame_equal(resumed.table, first.table)
    pd.testing.assert_frame_equal(again.table, first.table)
    assert resumed.summary.protocols == first.summary.protocols
    with pytest.raises(InputError, match="differ"):
        measure_layers(model, open_source(images), protocols="crop", parts_dir=parts, **kwargs)


def test_zhang_is_refused_in_one_line(images):
    with pytest.raises(InputError, match=r"sequence protocols.*'zhang'"):
        _measure(_model(), images, protocols="crop,zhang")


def test_halves_from_scores_add_typical_and_atypical_figures(images):
    source = open_source(images)
    ids = sorted({r.load()[1] for r in source.records if r.relative.startswith("img")})
    halves = pd.Series(["typical"] * 3 + ["atypical"] * 3, index=ids)
    result = _measure(_model("stride"), images, protocols="crop", halves=halves)
    entry = result.summary.protocols["crop"][1]
    assert entry["halves"]["typical"]["n"] == 3 and entry["halves"]["atypical"]["n"] == 3
    rows = result.table[(result.table.protocol == "crop") & (result.table.probe == "7")]
    typical = rows[rows.image_id.isin(ids[:3])]["change_1"].mean()
    assert entry["halves"]["typical"]["change_1"]["value"] == pytest.approx(typical)


FACTORY = '''
from torch import nn
import torch
from biasprobe.models import Preprocessing, from_module

def build():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Conv2d(6, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return from_module(net, name="squeeze", preprocessing=Preprocessing(32, (0.5,) * 3, (0.5,) * 3, 1.0, 3))

def broken():
    raise RuntimeError("no such layer\\nsecond line")

def not_a_model():
    return nn.Linear(2, 2)
'''


def test_cli_layers_with_a_python_factory_model(images, tmp_path, monkeypatch, capsys):
    (tmp_path / "userpkg_layers.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "l.parquet"
    ids = sorted({r.load()[1] for r in open_source(images).records if r.relative.startswith("img")})
    scores = tmp_path / "scores.parquet"
    pd.DataFrame({"image_id": ids, "knn_dist": np.arange(6.0), "atypicality": np.arange(6) / 6}).to_parquet(scores)
    argv = ["layers", "--model", "py:userpkg_layers:build", "--images", str(images), "--protocol", "crop,circular",
            "--out", str(out), "--threads", "2", "--batch-size", "8", "--scores", str(scores)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "change_1" in printed and "wrote" in printed
    table = pd.read_parquet(out)
    assert list(table["probe"].unique()) == ["1", "4", EMBEDDING]  # "4": the head's class map, last at stride 2
    assert table["model"].eq("py:userpkg_layers:build").all()
    summary = json.loads(companion(out, "summary").read_text())
    assert summary["format"] == "biasprobe.layers" and summary["command"][:1] == ["layers"]
    assert "input of 4" in summary["model"]["layer"]  # the 1x1-conv head's pooled input
    halves = summary["protocols"]["crop"][-1]["halves"]
    assert halves["typical"]["n"] == 3 and halves["atypical"]["n"] == 3


@pytest.mark.parametrize(("factory", "message"), [
    ("broken", "the factory userpkg_layers:broken failed: RuntimeError: no such layer second line"),
    ("not_a_model", "the factory userpkg_layers:not_a_model returned Linear"),
    ("missing", "userpkg_layers has no function 'missing'"),
])  # fmt: skip
def test_a_broken_factory_is_one_line_naming_it(images, tmp_path, monkeypatch, capsys, factory, message):
    (tmp_path / "userpkg_layers.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    argv = ["layers", "--model", f"py:userpkg_layers:{factory}", "--images", str(images), "--protocol", "crop",
            "--out", str(tmp_path / "x.parquet")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# --- shift-distance curves ---------------------------------------------------------------------------


def test_shift_distance_counts_pairs_d_apart():
    from biasprobe.analysis import shift_distance

    views = pd.DataFrame({"image_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 2, "protocol": ["crop"] * 8 + ["zhang"] * 2,
                          "t": [0, 1, 2, 3, 0, 1, 2, 3, 0, 1], "top1": [1, 2, 1, 2, 5, 5, 5, 6, 0, 1]})  # fmt: skip
    curve = shift_distance(views, model="m")
    assert curve["protocol"].tolist() == ["crop"] * 3 and curve["d"].tolist() == [1, 2, 3]
    assert curve["pairs"].tolist() == [6, 4, 2]
    assert curve["differs"].tolist() == [4, 1, 2]  # a: 3, 0, 1; b: 1, 1, 1
    assert curve["p_differs"].tolist() == [4 / 6, 1 / 4, 1.0]
    assert (curve["ci_low"] <= curve["p_differs"]).all() and curve["model"].eq("m").all()


def test_a_stride_2_net_never_changes_its_answer_at_an_even_circular_shift(images):
    from biasprobe.analysis import shift_distance

    params = ProtocolParams(max_shift=8, embed_size=24, input_size=S)
    inv = measure_invariance(_model("stride"), open_source(images), protocols="circular", params=params,
                             runtime=Runtime.create(threads=2), progress=False)  # fmt: skip
    curve = shift_distance(inv.views).set_index("d")["differs"]
    assert [curve[d] for d in (2, 4, 6, 8)] == [0, 0, 0, 0]
    unstriped = measure_invariance(_model("none"), open_source(images), protocols="circular", params=params,
                                   runtime=Runtime.create(threads=2), progress=False)  # fmt: skip
    assert shift_distance(unstriped.views)["differs"].eq(0).all()
