"""Comparing models on the same images: hand-made invariance tables with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from biasprobe.analysis import accuracy_consistency_answer, compare_model_tables, group_stats
from biasprobe.core.errors import InputError


def _rows(model: str, protocol: str, flips: list[int], pairs: int, correct: list[bool | None],
          ids: list[str] | None = None) -> pd.DataFrame:
    ids = ids or [f"{i:016x}" for i in range(1, len(flips) + 1)]
    return pd.DataFrame({
        "image_id": ids, "protocol": protocol, "model": model, "pairs": pairs, "flips": flips,
        "p_change": [f / pairs for f in flips], "mac_top1": [f / pairs for f in flips],
        "correct0": pd.array(correct, dtype="boolean"),
    })  # fmt: skip


def _model(model: str, crop: list[int], zhang: list[int], correct: list[bool | None], extra: bool = False) -> pd.DataFrame:
    ids = [f"{i:016x}" for i in range(1, 5)] + (["00000000000000ff"] if extra else [])
    crop, zhang, correct = crop + [3] * extra, zhang + [4] * extra, correct + [False] * extra
    return pd.concat([_rows(model, "zhang", zhang, 5, correct, ids), _rows(model, "crop", crop, 4, correct, ids)])


A = _model("lite_a", crop=[0, 1, 0, 0], zhang=[0, 0, 1, 0], correct=[True, True, True, False])
B = _model("lite_b", crop=[2, 2, 0, 0], zhang=[2, 1, 1, 0], correct=[True, False, False, False], extra=True)


def test_figures_per_model_and_protocol_on_the_shared_images() -> None:
    table = compare_model_tables([("lite_a", A), ("lite_b", B)], seed=3)
    assert list(zip(table.model, table.protocol, strict=True)) == [
        ("lite_a", "crop"), ("lite_b", "crop"), ("lite_a", "zhang"), ("lite_b", "zhang")]  # section 2.2's order
    by = table.set_index(["model", "protocol"])
    assert by.loc[("lite_a", "crop"), "p_change"] == pytest.approx(1 / 16)
    assert by.loc[("lite_b", "crop"), "p_change"] == pytest.approx(4 / 16)  # the fifth image of lite_b is left out
    assert by.loc[("lite_a", "zhang"), "consistency"] == pytest.approx(1 - 1 / 20)
    assert by.loc[("lite_b", "zhang"), "consistency"] == pytest.approx(1 - 4 / 20)
    assert (by["n"] == 4).all() and list(by["dropped"]) == [0, 1, 0, 1]
    assert list(by["accuracy"]) == [0.75, 0.25, 0.75, 0.25]
    assert math.isnan(by.loc[("lite_a", "crop"), "consistency"])  # consistency only for the paired protocol
    # the CIs are group_stats' on the same rows, consistency's the mirror of P(change)'s
    own = group_stats(B[(B.protocol == "zhang") & (B.image_id != "00000000000000ff")], seed=3)
    row = by.loc[("lite_b", "zhang")]
    assert (row["p_change_lo"], row["p_change_hi"]) == (own.p_change.ci_low, own.p_change.ci_high)
    assert (row["accuracy_lo"], row["accuracy_hi"]) == (own.accuracy.ci_low, own.accuracy.ci_high)
    assert (row["consistency_lo"], row["consistency_hi"]) == pytest.approx((1 - own.p_change.ci_high, 1 - own.p_change.ci_low))


def test_the_answer_is_computed_from_the_numbers() -> None:
    table = compare_model_tables([("lite_a", A), ("lite_b", B)])
    text = accuracy_consistency_answer(table, "zhang")
    assert text.startswith("Under zhang (2 models, 4 images each): are more accurate models more consistent here? Yes:")
    assert "accuracy: lite_a 0.750, lite_b 0.250; P(top-1 change): lite_a 0.050, lite_b 0.200" in text
    assert "overlap, so 4 images cannot tell the models' consistency apart" in text
    # the reverse: the accurate model flips more, on many images, with CIs apart
    many = [f"{i:016x}" for i in range(1, 41)]
    steady = _rows("steady", "crop", [0] * 40, 4, [False] * 30 + [True] * 10, many)
    jumpy = _rows("jumpy", "crop", [4] * 40, 4, [True] * 30 + [False] * 10, many)
    reverse = accuracy_consistency_answer(compare_model_tables([("steady", steady), ("jumpy", jumpy)]), "crop")
    assert "No, the reverse: the more accurate model changes its top-1 more" in reverse
    assert "1 of the 1 pairs have 95% CIs of P(top-1 change) that do not overlap" in reverse
    assert "tell the models' consistency apart" not in reverse
    # three models, mixed
    mid = _rows("mid", "crop", [1] * 40, 4, [True] * 4 + [False] * 36, many)
    mixed = accuracy_consistency_answer(
        compare_model_tables([("steady", steady), ("jumpy", jumpy), ("mid", mid)]), "crop")
    assert "Not consistently: of 3 pairs of models of different accuracy, the more accurate one changes its top-1 less in 1, more in 2" in mixed


def test_without_labels_or_with_equal_accuracy_the_answer_says_so() -> None:
    unlabelled = [(name, frame.assign(correct0=pd.array([None] * len(frame), dtype="boolean"))) for name, frame in
                  (("lite_a", A), ("lite_b", B))]
    text = accuracy_consistency_answer(compare_model_tables(unlabelled), "crop")
    assert "Unknown: accuracy needs labels, and only 0 of the models' tables have them" in text
    assert "P(top-1 change) alone ranks them: lite_a 0.062, lite_b 0.250." in text
    same = compare_model_tables([("lite_a", A), ("lite_c", A.assign(model="lite_c"))])
    assert "equally accurate" in accuracy_consistency_answer(same, "crop")


def test_tables_that_cannot_be_compared_are_refused() -> None:
    with pytest.raises(InputError, match="at least two models, got 1"):
        compare_model_tables([("lite_a", A)])
    with pytest.raises(InputError, match="its own name"):
        compare_model_tables([("lite_a", A), ("lite_a", B)])
    with pytest.raises(InputError, match="share no protocol"):
        compare_model_tables([("lite_a", A[A.protocol == "crop"]), ("lite_b", B[B.protocol == "zhang"])])
    other = B.assign(image_id=B.image_id.str.replace("0000", "ffff", n=1))
    with pytest.raises(InputError, match="under crop the models share no image"):
        compare_model_tables([("lite_a", A), ("lite_b", other)])
    with pytest.raises(InputError, match="no models were compared under 'scale'"):
        accuracy_consistency_answer(compare_model_tables([("lite_a", A), ("lite_b", B)]), "scale")
