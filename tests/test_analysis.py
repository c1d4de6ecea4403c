"""The analysis of docs/protocols.md section 5 on small synthetic tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _report_data import make_invariance, make_scores
from scipy import stats as sps

from biasprobe import analysis as an
from biasprobe.analysis import stats
from biasprobe.core.errors import InputError


def _rows(atyp: list[float], flips: list[int], *, pairs: int = 10, correct: list[bool] | None = None,
          p_top0: list[float] | None = None, model: str = "m", protocol: str = "crop") -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(atyp)
    ids = [f"{i:016x}" for i in range(n)]
    scores = pd.DataFrame({"image_id": ids, "path": [f"{i}.png" for i in range(n)], "atypicality": atyp})
    inv = pd.DataFrame({
        "image_id": ids, "protocol": protocol, "model": model, "pairs": pairs, "flips": flips,
        "p_change": np.asarray(flips) / pairs, "mac_top1": 0.01,
        "correct0": pd.array(correct if correct is not None else [True] * n, dtype="boolean"),
        "p_top0": p_top0 if p_top0 is not None else np.linspace(0.5, 0.9, n),
    })
    return scores, inv


@pytest.mark.parametrize("n", [5, 57])
def test_vectorised_bootstrap_gives_the_loop_bootstraps_intervals(n):
    rng = np.random.default_rng(3)
    flips = rng.integers(0, 5, n).astype(float)
    pairs = np.full(n, 8.0)
    x = rng.uniform(size=n)
    assert stats.ratio_estimate(flips, pairs).ci == stats.bootstrap(lambda i: flips[i].sum() / pairs[i].sum(), n)
    assert stats.mean_estimate(x).ci == stats.bootstrap(lambda i: float(x[i].mean()), n)

    def rho(i: np.ndarray) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.corrcoef(sps.rankdata(x[i]), sps.rankdata(flips[i]))[0, 1])

    assert stats.spearman_estimate(x, flips).ci == pytest.approx(stats.bootstrap(rho, n), abs=1e-12)
    ties = np.round(x * 3)  # heavy ties on both sides

    def rho_ties(i: np.ndarray) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.corrcoef(sps.rankdata(ties[i]), sps.rankdata(flips[i]))[0, 1])

    assert stats.spearman_estimate(ties, flips).ci == pytest.approx(stats.bootstrap(rho_ties, n), abs=1e-12)


def test_group_stats_pools_flips_and_weights_mac_by_pairs():
    frame = pd.DataFrame({"flips": [1, 0], "pairs": [2, 8], "mac_top1": [0.5, 0.0],
                          "correct0": pd.array([True, None], dtype="boolean")})
    g = an.group_stats(frame)
    assert g.p_change.value == pytest.approx(0.1)  # sum(flips) / sum(pairs), not the mean of 0.5 and 0
    assert g.mac.value == pytest.approx(0.1)  # mean over all 10 pairs, not the mean of per-image means
    assert g.accuracy.value == 1.0 and g.accuracy.n == 1  # unknown correctness is not counted as wrong
    assert (g.flips, g.pairs, g.n) == (1, 10, 2)


def test_bins_are_equal_count_on_rank_even_with_ties():
    scores = pd.DataFrame({"image_id": [f"{i:016x}" for i in range(40)], "atypicality": [0.5] * 20 + [0.9] * 20})
    bins = an.assign_bins(scores)
    assert bins.value_counts().tolist() == [4] * 10
    assert bins.iloc[0] == 1 and bins.iloc[-1] == 10  # 1 = most typical
    small = an.assign_bins(scores.head(4))
    assert sorted(small.tolist()) == [1, 2, 3, 4]
    assert an.assign_bins(scores.head(1)).empty


def test_decile_table_figures_and_ratios():
    atyp = list(np.linspace(0, 1, 20))
    flips = [0, 0] * 5 + [5, 5] * 5  # typical half never flips, atypical half flips half the time
    correct = [True] * 10 + [True, False] * 5
    scores, inv = _rows(atyp, flips, correct=correct)
    table = an.decile_table(inv.merge(scores[["image_id", "atypicality"]]), an.assign_bins(scores))
    assert table["n"].tolist() == [2] * 10
    assert table["p_change"].tolist() == [0.0] * 5 + [0.5] * 5
    assert table["instability_ratio"].tolist() == pytest.approx([0.0] * 5 + [2.0] * 5)  # 0.5 / 0.25
    # overall accuracy 15/20: error ratio of an atypical decile = (1 - 0.5) / (1 - 0.75) = 2
    assert table["error_ratio"].tolist() == pytest.approx([0.0] * 5 + [2.0] * 5)
    assert (table["p_change_lo"] <= table["p_change"]).all() and (table["p_change"] <= table["p_change_hi"]).all()


def test_halves_split_at_the_median_of_the_scored_images():
    scores, inv = _rows(list(np.linspace(0, 1, 10)), [0] * 10)
    halves = an.assign_halves(scores)
    assert (halves == "typical").sum() == 5 and halves.iloc[0] == "typical" and halves.iloc[-1] == "atypical"
    # only 3 images measured, all below the median of the 10 scored: all typical
    sub = inv.head(3).assign(flips=[1, 2, 3])
    table = an.halves_table(sub, halves).set_index("half")
    assert table.loc["typical", "n"] == 3 and table.loc["atypical", "n"] == 0
    assert table.loc["typical", "share_of_flips"] == 1.0


def test_spearman_matches_scipy_and_is_significant_on_a_real_effect():
    scores = make_scores(150)
    inv, _ = make_invariance(scores, effect=0.6)
    res = an.analyse(scores, inv)[0]
    want = sps.spearmanr(scores["atypicality"], inv["p_change"]).statistic
    assert res.spearman.value == pytest.approx(want)
    assert res.spearman.ci_low < res.spearman.value < res.spearman.ci_high
    assert res.spearman.ci_low > 0 and res.spearman.p_value < 0.01
    # within correctly classified images: only those rows
    assert res.spearman_correct.n == int(inv["correct0"].sum())
    assert res.deciles["p_change"].iloc[-1] > res.deciles["p_change"].iloc[0]


def test_no_effect_gives_a_ci_that_includes_zero_and_an_honest_verdict():
    scores = make_scores(150, seed=5)
    inv, _ = make_invariance(scores, effect=0.0, base=0.1, seed=7)
    res = an.analyse(scores, inv)[0]
    assert res.spearman.ci_low < 0 < res.spearman.ci_high
    text = an.verdict(res)
    assert "No evidence" in text and "includes 0" in text


def test_logistic_control_sees_atypicality_beyond_confidence():
    rng = np.random.default_rng(0)
    n = 300
    atyp = rng.uniform(size=n)
    conf = rng.uniform(0.3, 1.0, n)  # independent of atypicality
    flips = (rng.uniform(size=n) < 0.05 + 0.8 * atyp).astype(int)
    scores, inv = _rows(list(atyp), list(flips), p_top0=list(conf))
    lg = an.logistic_control(an.join_scores(scores, inv))
    assert lg.ok and lg.covariates == ("atypicality", "p_top0")
    assert lg.ci_low > 0 and lg.ci_low < lg.coef < lg.ci_high
    # standardised: rescaling atypicality does not change the coefficient
    lg100 = an.logistic_control(an.join_scores(scores.assign(atypicality=atyp * 100), inv))
    assert lg100.coef == pytest.approx(lg.coef, rel=1e-6)


def test_logistic_control_explains_why_it_cannot_fit():
    scores, inv = _rows(list(np.linspace(0, 1, 30)), [0] * 30)
    lg = an.logistic_control(an.join_scores(scores, inv))
    assert not lg.ok and "same outcome" in lg.note
    conf = list(np.random.default_rng(0).uniform(0.3, 1.0, 30))
    scores, inv = _rows(list(np.linspace(0, 1, 30)), [0] * 15 + [3] * 15, p_top0=conf)  # perfectly separated
    lg = an.logistic_control(an.join_scores(scores, inv))
    assert not lg.ok and "separation" in lg.note
    tiny = an.logistic_control(an.join_scores(*_rows([0.1, 0.9], [0, 1])))
    assert not tiny.ok and "too few" in tiny.note


def test_protocol_figures_has_exactly_the_demo_keys():
    scores = make_scores(60)
    inv, _ = make_invariance(scores, protocols=("crop", "black"))
    figs = an.protocol_figures(scores, inv, "crop")
    assert set(figs) == {"n", "p_change", "p_change_ci", "mac", "accuracy", "spearman_rho", "spearman_ci",
                         "typical_half", "atypical_half"}
    crop = inv[inv["protocol"] == "crop"]
    assert figs["n"] == 60 and figs["p_change"] == pytest.approx(crop["flips"].sum() / crop["pairs"].sum())
    assert figs["typical_half"]["n"] + figs["atypical_half"]["n"] == 60
    bare = an.protocol_figures(None, inv, "crop")
    assert bare["spearman_rho"] is None and bare["typical_half"] is None and bare["p_change"] == figs["p_change"]
    with pytest.raises(InputError, match="scale"):
        an.protocol_figures(scores, inv, "scale")


def test_models_share_one_atypicality_axis():
    scores = make_scores(80)
    base, _ = make_invariance(scores, model="base", effect=0.5)
    fixed, _ = make_invariance(scores.head(40), model="aa", effect=0.05)  # a model measured on half the images
    table = an.compare_models(scores, pd.concat([base, fixed])).set_index("model")
    assert list(table.index) == ["base", "aa"]
    halves = an.assign_halves(scores)
    want = int((halves.loc[scores.head(40)["image_id"]] == "typical").sum())
    assert table.loc["aa", "typical_n"] == want  # halves come from the scores table, not from the model's rows
    assert table.loc["base", "atypical_p_change"] > table.loc["base", "typical_p_change"]


def test_pose_atypicality_is_analysed_when_boxes_exist():
    scores = make_scores(100, boxes=True)
    inv, _ = make_invariance(scores)
    res = an.analyse(scores, inv)[0]
    assert res.pose_spearman is not None and res.pose_spearman.n == 100
    assert len(res.pose_deciles) == 10 and "pose_atypicality_min" in res.pose_deciles.columns
    plain = an.analyse(make_scores(100), inv)[0]
    assert plain.pose_spearman is None and plain.pose_deciles.empty


def test_tiny_and_label_free_inputs_do_not_crash():
    scores, inv = _rows([0.2, 0.8], [0, 1])
    res = an.analyse(scores, inv.drop(columns=["correct0"]))[0]
    assert res.spearman_correct is None and res.deciles_correct.empty
    assert "cannot be computed" in an.verdict(res)
    assert np.isnan(res.overall.accuracy.value)
    no_scores = an.analyse(None, inv)[0]
    assert no_scores.spearman is None and "no typicality scores" in an.verdict(no_scores)


def test_a_table_without_the_contract_columns_is_refused():
    with pytest.raises(InputError, match="flips"):
        an.join_scores(None, pd.DataFrame({"image_id": ["a"], "protocol": ["crop"]}))


def test_verdict_on_a_real_effect_names_the_ratio_and_the_control():
    scores = make_scores(200)
    inv, _ = make_invariance(scores, effect=0.5)
    text = an.verdict(an.analyse(scores, inv)[0])
    assert text.startswith("world_vgg, protocol crop: Instability is concentrated on atypical images")
    assert "most atypical tenth" in text and "x as often" in text and "Spearman rho" in text
    assert "controlling for confidence" in text and "Within correctly classified" in text


def _saturated(n: int = 120, *, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Scores whose atypicality saturates at 1 for 40% of the images (as a real reference does for
    images farther than every training image), kNN distances all distinct; invariance and views."""
    scores = make_scores(n, seed=seed, boxes=True)
    knn = np.random.default_rng(seed).uniform(0.1, 0.7, n)
    scores["knn_dist"] = knn
    scores["atypicality"] = np.minimum(1.0, np.round(knn / np.quantile(knn, 0.6), 2))
    scores["pose_atypicality"] = np.round(scores["pose_atypicality"], 1)  # ties with no distance behind them
    inv, views = make_invariance(scores, protocols=("black", "crop"), effect=0.5)
    return scores, inv, views


def _shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


def _same(a: object, b: object) -> None:
    """Equal, NaN equal to NaN (dataclasses, estimates, frames)."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))  # type: ignore[union-attr]
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)  # type: ignore[arg-type]
    else:
        np.testing.assert_equal(a, b)


def test_every_statistic_is_a_property_of_the_data_not_of_the_row_order():
    scores, inv, _ = _saturated()
    assert (scores["atypicality"] == 1).mean() == pytest.approx(0.4, abs=0.02)
    base = an.analyse(scores, inv)
    for seed in (1, 2):
        other = an.analyse(_shuffled(scores, seed), _shuffled(inv, seed + 10))
        assert [(r.model, r.protocol) for r in other] == [("world_vgg", "crop"), ("world_vgg", "black")]
        for a, b in zip(base, other, strict=True):
            for name in ("overall", "spearman", "spearman_correct", "logistic", "pose_spearman"):
                _same(getattr(a, name), getattr(b, name))
            for name in ("deciles", "deciles_correct", "halves", "pose_deciles"):
                _same(getattr(a, name), getattr(b, name))
        _same(an.protocol_table(inv), an.protocol_table(_shuffled(inv, seed)))
        _same(an.compare_models(scores, inv), an.compare_models(_shuffled(scores, seed), _shuffled(inv, seed)))
        _same(an.protocol_figures(scores, inv, "crop"), an.protocol_figures(_shuffled(scores, seed), _shuffled(inv, seed), "crop"))
        for assign in (an.assign_bins, an.assign_halves):
            _same(assign(scores).sort_index(), assign(_shuffled(scores, seed)).sort_index())


def test_saturated_atypicality_is_ranked_by_knn_dist_and_the_deciles_say_so():
    scores, inv, _ = _saturated()
    bins = an.assign_bins(scores)
    by_knn = scores.sort_values("knn_dist")["image_id"]
    assert bins[by_knn].tolist() == sorted(bins.tolist())  # the order of knn_dist, ties of atypicality included
    deciles = an.analyse(scores, inv)[0].deciles
    top = deciles[deciles["atypicality_min"] == 1.0]
    assert len(top) >= 3  # deciles that atypicality alone cannot tell apart ...
    assert (top["knn_dist_min"].to_numpy()[1:] > top["knn_dist_max"].to_numpy()[:-1]).all()  # ... kNN distance does
    halves = an.assign_halves(scores)
    assert set(halves[by_knn.head(60)]) == {"typical"} and set(halves[by_knn.tail(60)]) == {"atypical"}


def test_ties_without_a_distance_are_broken_by_image_id_and_halves_split_the_ranking():
    ids = [f"{i:016x}" for i in range(9)]
    scores = pd.DataFrame({"image_id": ids[::-1], "atypicality": [1.0] * 9})  # all tied, rows in reverse id order
    assert an.assign_bins(scores, bins=3)[ids].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    halves = an.assign_halves(scores)[ids].tolist()
    assert halves == ["typical"] * 5 + ["atypical"] * 4  # ceil(n / 2) typical, as '<= median' without ties
    with_knn = scores.assign(knn_dist=np.arange(1, 10) / 10)  # knn_dist rises with the rows: the reverse id order
    assert an.assign_bins(with_knn, bins=3)[ids[::-1]].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_the_protocol_order_is_the_registrys():
    from biasprobe.invariance.protocols import list_protocols

    assert tuple(p.name for p in list_protocols()) == an.PROTOCOL_ORDER
    assert an.protocol_order(["zz", "zhang", "aa", "crop"]) == ["crop", "zhang", "aa", "zz"]


def test_analyse_reads_tables_given_as_paths_and_names_what_it_wants(tmp_path) -> None:
    from pathlib import Path

    scores = make_scores(120)
    inv = make_invariance(scores, effect=1.0)[0]
    scores.to_parquet(tmp_path / "s.parquet")
    inv.to_parquet(tmp_path / "x.parquet")
    from_frames = an.analyse(scores, inv)[0]
    for s, x in [(str(tmp_path / "s.parquet"), str(tmp_path / "x.parquet")), (tmp_path / "s.parquet", Path(tmp_path / "x.parquet"))]:
        from_files = an.analyse(s, x)[0]
        assert from_files.spearman == from_frames.spearman and from_files.overall == from_frames.overall
    assert an.analyse(None, tmp_path / "x.parquet")[0].spearman is None
    with pytest.raises(InputError, match="table not found"):
        an.analyse(tmp_path / "nope.parquet", inv)
    with pytest.raises(TypeError, match=r"^analyse\(\) takes the invariance table as a pandas DataFrame or the path of its "
                                        r"Parquet file, got dict$"):
        an.analyse(scores, {"image_id": []})  # type: ignore[arg-type]
