"""The running prediction: scores, smoothing, "no gesture", hysteresis; hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.pipeline.decision import RunningPrediction


def predictor(**options) -> RunningPrediction:
    settings = dict(num_classes=3, smoothing=1, min_confidence=0.4, min_output_spikes=4, switch_margin=0.1)
    return RunningPrediction(**{**settings, **options})


def test_one_window_scores_are_its_normalised_counts():
    d = predictor().update([6, 2, 0], t_us=1234, frame_index=9)
    assert d.label == 0 and d.confidence == pytest.approx(0.75)
    np.testing.assert_allclose(d.scores, [0.75, 0.25, 0.0])
    np.testing.assert_array_equal(d.counts, [6, 2, 0])
    assert (d.t_us, d.frame_index) == (1234, 9)


def test_scores_are_the_mean_of_the_recent_windows():
    p = predictor(smoothing=2, switch_margin=0.0)
    p.update([4, 0, 0], 0, 0)
    d = p.update([1, 3, 0], 1, 1)           # mean of [1, 0, 0] and [.25, .75, 0]
    np.testing.assert_allclose(d.scores, [0.625, 0.375, 0.0])
    assert d.label == 0
    d = p.update([0, 0, 8], 2, 2)           # [1, 0, 0] left the history: mean of [.25, .75, 0] and [0, 0, 1]
    np.testing.assert_allclose(d.scores, [0.125, 0.375, 0.5])
    assert d.label == 2 and d.confidence == pytest.approx(0.5)


def test_zero_activity_is_no_gesture():
    p = predictor()
    assert p.update([5, 0, 0], 0, 0).label == 0
    d = p.update([0, 0, 0], 1, 1)
    assert d.label is None and d.confidence == 0.0
    np.testing.assert_array_equal(d.scores, [0, 0, 0])


def test_a_window_below_min_output_spikes_is_no_gesture_and_a_silent_vote():
    p = predictor(smoothing=2)
    p.update([8, 0, 0], 0, 0)
    d = p.update([0, 3, 0], 1, 1)           # 3 < 4 spikes: no gesture, votes zeros
    assert d.label is None
    np.testing.assert_allclose(d.scores, [1.0, 0.0, 0.0])
    d = p.update([0, 0, 0], 2, 2)
    assert d.label is None and not d.scores.any()


def test_alternating_near_ties_do_not_flip_the_label():
    p = predictor()
    labels = [p.update([10, 9, 0] if k % 2 == 0 else [9, 10, 0], k, k).label for k in range(8)]
    assert labels == [0] * 8
    without_hysteresis = predictor(switch_margin=0.0)
    labels = [without_hysteresis.update([10, 9, 0] if k % 2 == 0 else [9, 10, 0], k, k).label for k in range(8)]
    assert labels == [0, 1] * 4


def test_a_class_that_leads_by_the_margin_takes_over():
    p = predictor()
    assert p.update([10, 9, 0], 0, 0).label == 0
    d = p.update([8, 12, 0], 1, 1)          # .6 - .4 = .2 >= .1
    assert d.label == 1 and d.confidence == pytest.approx(0.6)


def test_a_score_hovering_at_the_threshold_does_not_flicker_to_no_gesture():
    p = predictor()                          # shown: stays while >= 0.4 - 0.1
    counts = [[4, 3, 3], [7, 6, 7], [4, 3, 3], [7, 6, 7]]   # top .4, then .35 (class 0 kept: 2 leads by .0)
    assert [p.update(c, k, k).label for k, c in enumerate(counts)] == [0, 0, 0, 0]
    fresh = predictor()
    assert fresh.update([7, 6, 7], 0, 0).label is None        # .35 < .4 to start showing


def test_confidence_too_low_is_uncertain_and_reports_the_top_score():
    d = predictor().update([3, 3, 2], 0, 0)
    assert d.label is None and d.confidence == pytest.approx(0.375)
    assert predictor(min_confidence=0.375).update([3, 3, 2], 0, 0).label == 0


def test_reset_forgets_history_and_label():
    p = predictor(smoothing=3)
    p.update([9, 0, 0], 0, 0)
    p.reset()
    assert p.label is None
    d = p.update([0, 5, 0], 1, 1)
    np.testing.assert_allclose(d.scores, [0, 1, 0])


def test_wrong_number_of_counts_is_refused():
    with pytest.raises(ValueError, match="expected 3 counts"):
        predictor().update([1, 2], 0, 0)
