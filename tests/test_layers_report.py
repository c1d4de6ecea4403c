"""The report's section on where invariance is lost: layers files, halves, shift-distance curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from biasprobe.cli import main
from biasprobe.core.io import write_table
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.invariance import run_invariance
from biasprobe.invariance.protocols import ProtocolParams
from biasprobe.layers import run_layers
from biasprobe.models import from_module
from biasprobe.report import write_report

S = 32
PREP = Preprocessing(S, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, 6)
PARAMS = ProtocolParams(max_shift=6, embed_size=24, input_size=S)


def _net(blur: bool) -> nn.Module:
    torch.manual_seed(0)
    conv = lambda i, o, s=1: nn.Conv2d(i, o, 3, stride=s, padding=1, padding_mode="circular", bias=False)  # noqa: E731
    down = [conv(8, 8), nn.ReLU(), nn.AvgPool2d(2)] if blur else [conv(8, 8, 2), nn.ReLU()]
    return nn.Sequential(conv(3, 8), nn.ReLU(), *down, conv(8, 8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 5))  # fmt: skip


@pytest.fixture(scope="module")
def stage_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lr")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8), "RGB").save(images / f"i{i}.png")
    runtime = Runtime.create(threads=2)
    layers, invs = [], []
    for blur in (False, True):
        model = from_module(_net(blur), name="pool" if blur else "stride", preprocessing=PREP)
        kw = dict(params=PARAMS, runtime=runtime, progress=False)
        layers.append(run_layers(model, open_source(images), root / f"{model.name}.layers.parquet",
                                 protocols="crop,circular", **kw).summary)  # fmt: skip
        run_invariance(model, open_source(images), root / f"{model.name}.parquet", protocols="crop,circular", **kw)
        invs.append(root / f"{model.name}.parquet")
    ids = sorted(pd.read_parquet(invs[0])["image_id"].unique())
    scores = pd.DataFrame({"image_id": ids, "path": [f"i{i}.png" for i in range(len(ids))], "knn_dist": np.arange(len(ids)) / 10,
                           "atypicality": np.arange(len(ids)) / len(ids)})  # fmt: skip
    write_table(scores, root / "scores.parquet")
    return root, images, invs, [root / "stride.layers.parquet", root / "pool.layers.parquet"]


def test_the_layers_section_shows_depth_aliasing_halves_and_curves(stage_files):
    root, images, invs, layer_files = stage_files
    out = write_report(root / "scores.parquet", invs, layers=layer_files, out=root / "r.html", images_root=images)
    html = out.read_text()
    section = html.split('<section id="layers">')[1].split("</section>")[0]
    assert section.count('src="data:image/png;base64,') == 3
    assert "stride: under crop, instability goes from" in section and "pool: under crop" in section
    assert "Under circular, at its strided probe where a whole-stride step fits in the views, a 1-pixel step changes " \
           "the features over 1000x as much as a whole-stride step: aliasing at the strides." in section
    assert "atypical / typical" in section and "At the embedding a 1-pixel step moves atypical images" in section
    assert "Dotted lines mark multiples of each model's total stride (stride 2, pool 2)" in section
    assert "layers stride: stride.layers.parquet" in html  # provenance


def test_without_layers_files_the_section_says_why_and_still_draws_the_curves(stage_files, capsys):
    root, images, invs, _ = stage_files
    out = root / "plain.html"
    assert main(["report", "--invariance", *map(str, invs), "--images", str(images), "--out", str(out)]) == 0
    section = out.read_text().split('<section id="layers">')[1].split("</section>")[0]
    assert "No layers file was given (--layers" in section
    assert section.count('src="data:image/png;base64,') == 1


def test_cli_report_takes_layers_files_and_refuses_a_missing_one(stage_files, capsys):
    root, images, invs, layer_files = stage_files
    out = root / "cli.html"
    argv = ["report", "--scores", str(root / "scores.parquet"), "--invariance", *map(str, invs), "--layers",
            *map(str, layer_files), "--images", str(images), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0 and "Where in the network invariance is lost" in out.read_text()
    assert main([*argv[:-2], "--layers", str(root / "nope.parquet"), "--out", str(out)]) == 1
    assert "table not found: " in capsys.readouterr().err
