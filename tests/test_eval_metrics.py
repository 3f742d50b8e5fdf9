"""The scoring arithmetic, on cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livegesture.evaluate.grid import Grid, best_point, pareto_front
from livegesture.evaluate.metrics import ClassScores, OnsetCurve, StreamScore, score_stream
from livegesture.sources.labels import GestureSegment, active_segment


def test_confusion_matrix_and_class_accuracy():
    labels = [0, 0, 1, 1, 1, 2]
    predictions = [0, 1, 1, 1, 2, 0]
    scores = ClassScores.of(labels, predictions, 4)
    assert scores.confusion.tolist() == [[1, 1, 0, 0], [0, 2, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert (scores.samples, scores.correct) == (6, 3)
    assert scores.accuracy == pytest.approx(0.5)
    assert scores.class_accuracy == [pytest.approx(0.5), pytest.approx(2 / 3), 0.0, None]
    assert ClassScores.of([], [], 3).accuracy is None


def test_active_segment_takes_the_latest_onset_among_overlaps():
    segments = [GestureSegment(0, 100, 300), GestureSegment(1, 200, 400)]
    times = np.array([50, 100, 199, 200, 299, 300, 399, 400])
    assert active_segment(times, segments).tolist() == [-1, 0, 0, 1, 1, 1, 1, -1]


def test_stream_scores_by_hand():
    gestures = [GestureSegment(3, 1_000_000, 3_000_000), GestureSegment(5, 4_000_000, 5_000_000),
                GestureSegment(7, 6_000_000, 6_500_000)]
    #          idle  | gesture 3 (onset 1 s)                            | idle | gesture 5       | g7 | idle
    times = [500_000, 1_100_000, 1_400_000, 1_600_000, 2_200_000, 2_900_000, 3_500_000, 4_100_000, 4_300_000,
             7_000_000]
    decided = [None, 2, None, 3, 4, 3, 3, 5, 5, None]
    score = score_stream(times, decided, gestures, num_classes=11)
    # inside gesture 3: 2, None, 3, 4, 3 -> 2 correct of 5; inside 5: 5, 5 -> 2 of 2; gesture 7: no decision
    assert score.frame_accuracy == pytest.approx(4 / 7)
    # outside: None (0.5 s), 3 (3.5 s), None (7 s)
    assert score.idle_rejection == pytest.approx(2 / 3)
    first = [g.first_correct_us for g in score.gestures]
    assert first == [600_000, 100_000, None]
    assert score.never_correct == pytest.approx(1 / 3)
    # gesture 3: 2 -> None (not counted), None -> 3 (correct), 3 -> 4 (wrong: 1), 4 -> 3 (correct)
    assert [g.false_switches for g in score.gestures] == [1, 0, 0]
    assert score.switches_per_gesture == pytest.approx(1 / 3)
    assert StreamScore.empty(11).switches_per_gesture is None
    assert [(g.decisions, g.correct) for g in score.gestures] == [(5, 2), (2, 2), (0, 0)]
    assert score.latency_stats() == {"median_s": pytest.approx(0.35), "mean_s": pytest.approx(0.35),
                                     "p90_s": pytest.approx(0.55)}
    # decisions confusion: 12 x 12, "no gesture" last
    confusion = score.decisions.confusion
    assert confusion.shape == (12, 12) and confusion.sum() == 10
    assert confusion[3].tolist() == [0, 0, 1, 2, 1, 0, 0, 0, 0, 0, 0, 1]
    assert confusion[11, 11] == 2 and confusion[11, 3] == 1
    # onset bins of 250 ms: g3 at 0.1, 0.4, 0.6, 1.2, 1.9 s; g5 at 0.1, 0.3 s
    assert score.curve.total.tolist() == [2, 2, 1, 0, 1, 0, 0, 1]
    assert score.curve.correct.tolist() == [1, 1, 1, 0, 0, 0, 0, 1]  # g3 right at 0.6, 1.9 s; g5 at 0.1, 0.3 s


def test_stream_scores_add_up_over_recordings():
    one = score_stream([10, 20], [0, 0], [GestureSegment(0, 0, 100)], 2, bin_us=10)
    two = score_stream([5, 50], [1, None], [GestureSegment(1, 0, 10)], 2, bin_us=10)
    total = StreamScore.empty(2, bin_us=10) + one + two
    assert total.frame_accuracy == pytest.approx(3 / 3)
    assert total.idle_rejection == pytest.approx(1.0)
    assert total.curve.total.tolist() == [1, 1, 1] and total.curve.correct.tolist() == [1, 1, 1]
    assert len(total.gestures) == 2
    assert np.isnan(OnsetCurve(10, np.array([0, 1]), np.array([0, 2])).accuracy[0])


def test_pareto_front_and_the_best_point():
    points = [(0.80, 1.0), (0.90, 2.0), (0.90, 1.5), (0.70, 0.5), (0.60, 0.8), (0.90, math.inf)]
    assert pareto_front(points) == [0, 2, 3]
    assert best_point(points) == 2  # most accurate on the front; (0.9, 2.0) is dominated by (0.9, 1.5)
    assert best_point([(0.5, 1.0), (0.5, 1.0)]) == 0  # equal points: neither dominates
    with pytest.raises(ValueError):
        best_point([])


def test_grid_points_are_the_product_of_the_values():
    grid = Grid.of({"events_per_frame": (1000, 2000), "smoothing": (1, 2, 3), "noise_filter": ()})
    assert grid.names == ("events_per_frame", "smoothing")
    changes = grid.changes()
    assert len(changes) == 6
    assert changes[0] == {"events_per_frame": 1000, "smoothing": 1}
    assert changes[-1] == {"events_per_frame": 2000, "smoothing": 3}


def test_a_tie_in_accuracy_goes_to_fewer_false_switches_then_to_the_faster_point():
    # the second point is a hundredth of a point less accurate, the third 0.2 points
    points = [(0.8280, 0.31), (0.8279, 0.31), (0.8260, 0.20)]
    assert best_point(points) == 0  # without switches: the faster; equally fast, the more accurate
    assert best_point(points, [0.35, 0.29, 0.0]) == 1  # tied: fewer switches
    assert best_point(points, [0.35, 0.35, 0.0]) == 0  # tied on switches and latency: the more accurate
    assert best_point(points[1::-1], [0.35, 0.35]) == 1  # whatever the order
    assert best_point([(0.8280, 0.40), (0.8275, 0.30)], [0.3, 0.3]) == 1  # tied: the faster
    assert best_point([(0.8280, 0.40), (0.8260, 0.30)], [0.3, 0.1]) == 0  # 0.2 points apart: no tie
