"""Degenerate models: (nearly) constant predictions are flagged in the analysis, the invariance
command's table and the report (docs/protocols.md section 3.4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_data import make_invariance, make_scores
from PIL import Image

from biasprobe import analysis as an
from biasprobe.cli import main
from biasprobe.core.io import companion, write_table
from biasprobe.report import write_report


def _constant(inv: pd.DataFrame, views: pd.DataFrame, cls: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables of a model that answers ``cls`` for every view: no flips, consistency 1."""
    inv = inv.assign(top0=cls, top0_name=f"class{cls}", flips=0, p_change=0.0, consistency=1.0, n_labels=1,
                     mac_top1=0.0, prob_range=0.0)
    return inv, views.assign(top1=cls)


def test_a_model_that_always_answers_one_class_is_flagged():
    scores = make_scores(40)
    inv, views = _constant(*make_invariance(scores, protocols=("crop", "black")))
    spread = an.prediction_spread(inv, views)
    assert [(s.protocol, s.constant) for s in spread] == [("crop", True), ("black", True)]
    crop = spread[0]
    assert (crop.modal_class, crop.modal_share, crop.n_classes, crop.basis) == (7, 1.0, 1, "views")
    assert crop.n_answers == 40 * 9 and crop.n_images == 40
    assert "class 7 (class7) is the top-1 of 100.0% of 360 views (1 distinct class, 40 images)" in crop.warning()
    assert "say nothing about shift invariance" in crop.warning()
    # without the views table the first views count; a verdict says it first
    assert an.prediction_spread(inv)[0].basis == "first views" and an.constant_predictions(inv)
    result = an.analyse(scores, inv)[0]
    assert an.verdict(result, crop).startswith("world_vgg, protocol crop: WARNING: the predictions are (nearly) constant")
    (line,) = an.model_warnings(spread)
    assert line.startswith("world_vgg: predictions are (nearly) constant under crop and black (crop: class 7")


def test_healthy_models_one_class_sets_and_tiny_sets_are_not_flagged():
    scores = make_scores(60)
    inv, views = make_invariance(scores)
    (healthy,) = an.prediction_spread(inv, views)
    assert not healthy.constant and healthy.n_classes == 3 and healthy.modal_share < 0.6
    # 96% of the views answer one class: flagged though some views differ
    mostly, mviews = _constant(inv, views)
    mviews.loc[mviews.index[: len(mviews) // 25], "top1"] = 1
    assert an.prediction_spread(mostly, mviews)[0].constant
    # every image is a 7 and the model says 7: the right answer, not a degenerate model
    sevens, sviews = _constant(inv.assign(label=pd.array([7] * len(inv), dtype="Int64")), views)
    assert not an.prediction_spread(sevens, sviews)[0].constant
    # fewer than MIN_IMAGES images: too few to tell
    few, fviews = _constant(inv.head(an.degenerate.MIN_IMAGES - 1), views)
    assert not an.prediction_spread(few, fviews)[0].constant


def test_the_report_flags_a_constant_model_in_the_summary_the_tables_and_its_figures(tmp_path):
    scores = make_scores(30)
    scores_path = write_table(scores, tmp_path / "scores.parquet")
    paths = []
    for name, tables in (("good", make_invariance(scores, model="good")),
                         ("dead", _constant(*make_invariance(scores, model="dead")))):
        paths.append(write_table(tables[0], tmp_path / f"{name}.parquet"))
        write_table(tables[1], companion(paths[-1], "views"))
    html = write_report(scores_path, paths, out=tmp_path / "r.html", images_root=tmp_path).read_text()
    assert '<p class="warn">dead: predictions are (nearly) constant under crop' in html  # summary
    assert html.count("constant predictions: class 7 (class7) on 100.0% of views") == 2  # protocol and fixes tables
    assert re.search(r'<h3>dead &middot; crop</h3>\s*<p class="warn">dead, protocol crop: predictions are \(nearly\) constant',
                     html)  # beside its figures
    assert "dead, protocol crop: WARNING: the predictions are (nearly) constant" in html  # its verdict
    good_only = write_report(scores_path, paths[:1], out=tmp_path / "g.html", images_root=tmp_path).read_text()
    assert "constant" not in good_only and 'class="warn"' not in good_only


@pytest.fixture(scope="module")
def dead_world_model(tmp_path_factory) -> tuple[Path, Path]:
    """A world_vgg checkpoint whose weights are zero and whose class 3 bias wins: it answers 3 for
    everything, like an untrained network; and six small images."""
    import torch

    from biasprobe.world.checkpoint import write_checkpoint
    from biasprobe.world.nets import WORLD_PREPROCESSING, build_net, net_config

    folder = tmp_path_factory.mktemp("dead")
    config = {**net_config("world_vgg"), "preprocessing": WORLD_PREPROCESSING.to_dict(),
              "classes": [str(i) for i in range(10)]}
    net = build_net(config)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.fc.bias[3] = 5.0
    weights = write_checkpoint(net.state_dict(), config, folder / "dead.pt")
    images = folder / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return weights, images


def test_cli_invariance_table_flags_constant_predictions(dead_world_model, tmp_path, capsys):
    weights, images = dead_world_model
    out = tmp_path / "dead.parquet"
    code = main(["invariance", "--model", "world_vgg", "--weights", str(weights), "--images", str(images),
                 "--protocol", "crop,black", "--max-shift", "2", "--threads", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    header = next(line for line in printed if line.startswith("protocol"))
    crop = next(line for line in printed if line.startswith("crop"))
    assert header.endswith("note") and crop.endswith("CONSTANT PREDICTIONS") and " 1.000 [1.000, 1.000]" in crop
    warnings = [line for line in printed if line.startswith("warning: ")]
    assert len(warnings) == 2 and "world_vgg, protocol crop: predictions are (nearly) constant: class 3 is the top-1 " \
        "of 100.0% of 18 views (1 distinct class, 6 images)" in warnings[0]
    summary = json.loads(out.with_name("dead.summary.json").read_text())
    assert summary["protocols"]["crop"]["constant_predictions"] is True and summary["protocols"]["crop"]["modal_share"] == 1.0
