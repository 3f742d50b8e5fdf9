"""The GUI's pure parts: overlay and frame images, timeline runs, true label, running accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.display.state import RunningAccuracy
from livegesture.evaluate.metrics import score_stream
from livegesture.events import make_events
from livegesture.display.timeline import (
    DecisionTimeline,
    Run,
    decision_runs,
    timeline_span,
    truth_runs,
)
from livegesture.gui.images import (
    BACKGROUND_RGB,
    OFF_RGB,
    ON_RGB,
    EventOverlay,
    decay_factor,
    frame_rgb,
    polarity_rgb,
)
from livegesture.sources.labels import NUM_CLASSES, GestureSegment, true_label_at

HALF = 1_000


def test_polarity_colours_on_the_dark_background():
    off = np.array([[0.0, 1.0, 0.0, 0.5]], dtype=np.float32)
    on = np.array([[0.0, 0.0, 1.0, 0.0]], dtype=np.float32)
    rgb = polarity_rgb(off, on)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], BACKGROUND_RGB)
    np.testing.assert_array_equal(rgb[0, 1], OFF_RGB)
    np.testing.assert_array_equal(rgb[0, 2], ON_RGB)
    np.testing.assert_array_equal(rgb[0, 3], np.rint((BACKGROUND_RGB + OFF_RGB) / 2))
    both = polarity_rgb(np.ones((1, 1), np.float32), np.ones((1, 1), np.float32))[0, 0]
    np.testing.assert_array_equal(both, np.clip(OFF_RGB + ON_RGB - BACKGROUND_RGB, 0, 255))
    assert both[0] > 200 and both[1] > 200  # yellow: red and green


def test_frame_image_channel_0_is_off_and_channel_1_on():
    frame = np.zeros((2, 63, 63), dtype=np.uint8)
    frame[0, 5, 7] = 1  # OFF at row 5, column 7
    frame[1, 60, 2] = 1  # ON at row 60, column 2
    rgb = frame_rgb(frame)
    assert rgb.shape == (63, 63, 3)
    np.testing.assert_array_equal(rgb[5, 7], OFF_RGB)
    np.testing.assert_array_equal(rgb[60, 2], ON_RGB)
    assert (rgb == BACKGROUND_RGB.astype(np.uint8)).all(axis=2).sum() == 63 * 63 - 2


def test_decay_halves_per_half_life_and_never_brightens():
    assert decay_factor(0, HALF) == 1.0
    assert decay_factor(HALF, HALF) == pytest.approx(0.5)
    assert decay_factor(3 * HALF, HALF) == pytest.approx(0.125)
    assert decay_factor(-5, HALF) == 1.0  # time going backwards (a new replay) does not brighten


def test_overlay_lights_new_events_and_fades_old_ones_by_event_time():
    overlay = EventOverlay((8, 4), half_life_us=HALF)  # width 8, height 4
    overlay.add(make_events([0, 10], [1, 6], [2, 3], [1, 0]))  # ON at (x1, y2), OFF at (x6, y3)
    assert overlay.intensity[1, 2, 1] == 1.0 and overlay.intensity[0, 3, 6] == 1.0
    assert overlay.intensity.sum() == 2.0
    overlay.add(make_events([10 + 2 * HALF], [0], [0], [1]))  # two half-lives later
    assert overlay.intensity[1, 2, 1] == pytest.approx(0.25)
    assert overlay.intensity[0, 3, 6] == pytest.approx(0.25)
    assert overlay.intensity[1, 0, 0] == 1.0
    overlay.add(make_events([], [], [], []))  # nothing new: nothing fades (a paused replay stays)
    assert overlay.intensity[1, 2, 1] == pytest.approx(0.25)
    rgb = overlay.rgb()
    assert rgb.shape == (4, 8, 3)  # rows = sensor y, columns = sensor x
    np.testing.assert_array_equal(rgb[0, 0], ON_RGB)
    np.testing.assert_array_equal(rgb[3, 6], np.rint(BACKGROUND_RGB + 0.25 * (OFF_RGB - BACKGROUND_RGB)))
    overlay.clear()
    assert not overlay.intensity.any()


def test_decision_runs_merge_equal_labels_and_run_to_the_end():
    runs = decision_runs([0, 10, 20, 20, 40], [3, 3, None, 5, 5], end_us=55)
    # the decision at 20 labelled None is replaced at once by the one at 20 labelled 5
    assert runs == [Run(0, 20, 3), Run(20, 55, 5)]
    assert decision_runs([], [], 100) == []


def test_timeline_keeps_its_span_and_clips_the_first_run():
    timeline = DecisionTimeline(span_us=100, max_decisions=1000)
    for t, label in [(0, 1), (50, 1), (120, None), (180, 2)]:
        timeline.add(t, label)
    assert timeline.runs(200) == [Run(100, 120, 1), Run(120, 180, None), Run(180, 200, 2)]
    assert len(timeline) == 3  # the decision at 0 is forgotten, the one at 50 still starts the window
    bounded = DecisionTimeline(span_us=10**9, max_decisions=5)
    for t in range(100):
        bounded.add(t, t % 3)
    assert len(bounded) == 5


def test_truth_runs_and_true_label():
    segments = [GestureSegment(4, 100, 200), GestureSegment(7, 300, 400), GestureSegment(2, 350, 380)]
    assert truth_runs(segments, 150, 360) == [Run(150, 200, 4), Run(300, 360, 7), Run(350, 360, 2)]
    assert true_label_at(segments, 99) == None
    assert true_label_at(segments, 100) == 4
    assert true_label_at(segments, 200) == None
    assert true_label_at(segments, 360) == 2  # overlapping: the latest to start
    assert true_label_at([], 5) == None


def test_running_accuracy_in_chunks_equals_the_evaluation_score():
    rng = np.random.default_rng(3)
    segments = [GestureSegment(int(c), s, s + 800) for c, s in zip(rng.integers(0, 11, 6), range(0, 6000, 1000))]
    times = np.sort(rng.integers(0, 6000, 400))
    labels = [None if r < 0 else int(r) for r in rng.integers(-1, 11, 400)]
    for k, segment in enumerate(segments):  # make some decisions right
        inside = np.flatnonzero((times >= segment.start_us) & (times < segment.end_us))[:20 + k]
        for i in inside:
            labels[i] = segment.label
    accuracy = RunningAccuracy(segments)
    assert accuracy.accuracy is None
    for lo in range(0, 400, 37):
        accuracy.add(times[lo:lo + 37], labels[lo:lo + 37])
    expected = score_stream(times, labels, segments, NUM_CLASSES)
    assert accuracy.correct == sum(g.correct for g in expected.gestures)
    assert accuracy.total == sum(g.decisions for g in expected.gestures)
    assert accuracy.accuracy == pytest.approx(expected.frame_accuracy)
    assert 0 < accuracy.accuracy < 1
    accuracy.reset()
    assert accuracy.accuracy is None


def test_the_timeline_fills_from_the_first_event_then_scrolls():
    assert timeline_span(first_us=1_000, now_us=3_000, span_us=10_000) == (1_000, 11_000)
    assert timeline_span(first_us=1_000, now_us=11_000, span_us=10_000) == (1_000, 11_000)
    assert timeline_span(first_us=1_000, now_us=25_000, span_us=10_000) == (15_000, 25_000)
