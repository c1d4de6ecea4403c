"""End to end on the built-in world, through the real pipeline (index, score, invariance,
analysis): a VGG-like net trained on objects at typical positions changes its top-1 answer
under 1-pixel crop shifts more often on atypical test images than on typical ones.

Seeded; the margins are several times what float differences between CPUs could move
(measured on this world: typical half about 0.03, atypical about 0.13, rho about 0.5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biasprobe.analysis import assign_halves, halves_table, join_scores, spearman_estimate
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index.build import build_index
from biasprobe.index.score import score_images
from biasprobe.invariance.run import measure_invariance
from biasprobe.models import create_model
from biasprobe.world import WorldConfig, make_world
from biasprobe.world.train import train_world_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("bias")
    world = make_world(root / "world", WorldConfig(seed=0, train_placements=2, test_placements=1))
    trained = train_world_model(world.root, arch="world_vgg", out=root / "vgg.pt", epochs=6, seed=0, progress=False)
    model = create_model("world_vgg", weights=trained.path)
    runtime = Runtime.create(device="cpu")
    train = open_source(world.train_dir)
    test = open_source(world.test_dir, boxes=world.boxes("test"))
    index = build_index(train, model, root / "index", runtime=runtime, show_progress=False)
    scores = score_images(index, test, model, runtime=runtime, show_progress=False).frame
    invariance = measure_invariance(model, test, protocols=("crop",), runtime=runtime, progress=False).images
    joined = join_scores(scores, invariance)
    boxes = pd.read_csv(world.boxes("test")).set_index("path")
    joined["true_offset"] = np.hypot(boxes.loc[joined["path"], "offset_x"], boxes.loc[joined["path"], "offset_y"]).to_numpy()
    joined.attrs["halves"] = halves_table(joined, assign_halves(scores))
    return joined


def test_every_test_image_measured(measured: pd.DataFrame) -> None:
    assert len(measured) == 540 and (measured["pairs"] == 8).all()
    assert measured["atypicality"].between(0, 1).all()


def test_atypical_half_flips_more(measured: pd.DataFrame) -> None:
    halves = measured.attrs["halves"].set_index("half")
    typical, atypical = halves.loc["typical"], halves.loc["atypical"]
    assert typical["n"] + atypical["n"] == len(measured)
    assert atypical["p_change"] > typical["p_change"] + 0.03
    assert atypical["p_change"] > 1.5 * typical["p_change"]
    assert atypical["p_change_lo"] > typical["p_change_hi"]  # the CIs do not overlap
    assert atypical["share_of_flips"] > 0.6


def test_rank_correlations_positive(measured: pd.DataFrame) -> None:
    p = measured["p_change"].to_numpy(dtype=float)
    rho = spearman_estimate(measured["atypicality"].to_numpy(dtype=float), p, seed=0)
    assert rho.value > 0.2 and rho.ci_low > 0.05
    offset = spearman_estimate(measured["true_offset"].to_numpy(dtype=float), p, seed=0)
    assert offset.value > 0.05 and offset.ci_low > 0
    deciles = pd.qcut(measured["atypicality"].rank(method="first"), 10, labels=False)
    by_decile = measured.groupby(deciles)["p_change"].mean()
    assert by_decile.iloc[-1] > by_decile.iloc[0] + 0.05
