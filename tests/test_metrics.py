"""Per-image metrics (docs/protocols.md section 3) on probabilities worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biasprobe.invariance.metrics import image_metrics, pair_indices

# Four views, three classes: top-1 = 0, 0, 1, 0 -> two flips over three pairs.
SEQ = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.5, 0.4, 0.1],
        [0.3, 0.6, 0.1],
        [0.7, 0.2, 0.1],
    ]
)


def test_sequence_metrics_by_hand():
    m, views = image_metrics(SEQ, label=1)
    assert (m.pairs, m.flips, m.n_labels, m.top0) == (3, 2, 2, 0)
    assert m.p_change == pytest.approx(2 / 3) and m.consistency == pytest.approx(1 / 3)
    # k = top-1 of the first view of each pair: 0, 0, 1 -> |.6-.5|, |.5-.3|, |.6-.2|
    assert m.mac_top1 == pytest.approx((0.1 + 0.2 + 0.4) / 3)
    # true label 1: |.3-.4|, |.4-.6|, |.6-.2|
    assert m.mac_true == pytest.approx((0.1 + 0.2 + 0.4) / 3)
    assert m.prob_range == pytest.approx(0.7 - 0.3)  # class 0 over all views
    assert m.correct0 is False and m.frac_correct == pytest.approx(0.25)
    assert m.p_top0 == pytest.approx(0.6)
    assert views.top1.tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(views.p_k0, [0.6, 0.5, 0.3, 0.7])
    np.testing.assert_allclose(views.p_true, [0.3, 0.4, 0.6, 0.2])


def test_without_label_the_label_metrics_are_missing():
    m, views = image_metrics(SEQ)
    assert m.correct0 is None and math.isnan(m.mac_true) and math.isnan(m.frac_correct)
    assert np.isnan(views.p_true).all()


def test_label_outside_the_model_classes_is_never_correct():
    m, _ = image_metrics(SEQ, label=7)
    assert m.correct0 is False and m.frac_correct == 0.0 and math.isnan(m.mac_true)


def test_paired_metrics_compare_only_within_pairs():
    # Pairs (0,1) and (2,3): first pair flips (0 -> 1), second does not; 0 -> 1 between pairs is ignored.
    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.3, 0.7]])
    m, views = image_metrics(probs, paired=True, label=0)
    assert (m.pairs, m.flips, m.n_labels) == (2, 1, 2)
    assert m.mac_top1 == pytest.approx((0.4 + 0.2) / 2)  # k = 0 then k = 1
    assert m.correct0 is True and m.frac_correct == pytest.approx(0.25)
    np.testing.assert_allclose(views.p_k0, [0.8, 0.4, 0.9, 0.7])
    a, b = pair_indices(4, paired=True)
    assert a.tolist() == [0, 2] and b.tolist() == [1, 3]


def test_stable_views_give_no_flips():
    probs = np.tile([[0.2, 0.5, 0.3]], (5, 1))
    m, _ = image_metrics(probs, label=1)
    assert (m.flips, m.p_change, m.mac_top1, m.prob_range, m.n_labels) == (0, 0.0, 0.0, 0.0, 1)
    assert m.correct0 is True and m.frac_correct == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        image_metrics(np.ones((1, 3)))
    with pytest.raises(ValueError):
        image_metrics(np.ones((3, 2)), paired=True)
