"""The Qt-free display state: what the window draws and the terminal prints, from updates alone."""

from __future__ import annotations

import numpy as np

from livegesture.display.state import DisplayState
from livegesture.display.text import WAITING_TEXT, accuracy_text, confidence_text
from livegesture.display.timeline import Run
from livegesture.events import make_events
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.runner import PipelineUpdate
from livegesture.pipeline.settings import PipelineSettings
from livegesture.pipeline.stats import PipelineStats
from livegesture.sources.labels import CLASS_NAMES, GestureSegment

LABELS = [GestureSegment(3, 1_000, 5_000), GestureSegment(7, 8_000, 9_000)]


def events_at(*times: int) -> np.ndarray:
    t = np.array(times, dtype=np.int64)
    return make_events(t, np.zeros_like(t), np.zeros_like(t), np.ones_like(t))


def decision(label: int | None, t_us: int, confidence: float = 0.5) -> Decision:
    scores = np.zeros(len(CLASS_NAMES))
    if label is not None:
        scores[label] = confidence
    return Decision(label, confidence, scores, np.zeros(len(CLASS_NAMES), dtype=np.int64), t_us, 0)


def update(times: tuple[int, ...] = (), decisions: tuple[Decision, ...] = (), **fields) -> PipelineUpdate:
    base = dict(events=events_at(*times), frame=None, decisions=decisions,
                prediction=decisions[-1] if decisions else None, stats=PipelineStats(events_in=len(times)),
                error=None, warning=None, finished=False, running=True, paused=False,
                settings=PipelineSettings(), switching=None, class_names=CLASS_NAMES, backend="fast")
    return PipelineUpdate(**{**base, **fields})


def test_it_follows_event_time_decisions_and_labels():
    state = DisplayState("demo", LABELS, live=False, span_us=10_000)
    assert state.line().startswith(WAITING_TEXT) and state.timeline_view() is None
    state.apply(update((500, 2_000), (decision(3, 2_000), decision(None, 2_500))))
    state.apply(update((3_000, 6_000), (decision(5, 4_000),), prediction=decision(5, 4_000, 0.75)))
    assert (state.first_us, state.now_us) == (500, 6_000)
    assert state.true_label is None  # 6,000 lies between the two gestures
    assert state.accuracy.correct == 1 and state.accuracy.total == 3  # 2,000 right, 2,500 and 4,000 wrong
    assert state.accuracy_line() == accuracy_text(1, 3)
    view = state.timeline_view()
    assert view.predicted == [Run(2_000, 2_500, 3), Run(2_500, 4_000, None), Run(4_000, 6_000, 5)]
    assert view.truth == [Run(1_000, 5_000, 3)] and (view.origin_us, view.start_us, view.end_us) == (500, 500, 10_500)
    line = state.line()
    assert line.startswith(CLASS_NAMES[5]) and "75% of the output spikes" in line and "true: no gesture" in line
    state.apply(update((8_500,)))
    assert state.true_label == 7 and not state.new_decision and f"true: {CLASS_NAMES[7]}" in state.line()


def test_an_unlabelled_source_has_no_truth():
    state = DisplayState("camera", None, live=True)
    state.apply(update((10,), (decision(1, 10),)))
    assert state.true_label is None and state.timeline_view().truth is None and "true:" not in state.line()
    assert state.status() == "live from camera (fast backend)"


def test_warnings_are_said_each_time_and_a_fatal_error_once():
    state = DisplayState("demo", None, live=False)
    state.apply(update(warning="settings: no"))
    assert state.message == "settings: no"
    state.apply(update())
    assert state.message is None
    state.apply(update(warning="settings: no"))
    assert state.message == "settings: no"
    state.apply(update(error="source: broken", running=False))
    assert state.message == "source: broken" and state.status() == "source: broken"
    state.apply(update(error="source: broken", running=False))
    assert state.message is None


def test_the_status_says_what_the_pipeline_does():
    state = DisplayState("demo", None, live=False)
    assert state.status() == "starting demo"
    state.apply(update((1,), backend="simplesim"))
    assert state.status() == "playing demo (simplesim backend)"
    state.apply(update(paused=True))
    assert state.status().startswith("paused demo")
    state.apply(update(switching="backend fast-sparse"))
    assert state.status().startswith("loading backend fast-sparse")
    state.apply(update(finished=True, running=False))
    assert state.status() == "end of demo: press Play to replay it" and state.finished


def test_the_confidence_of_no_gesture_says_why_not_a_share():
    counts = np.zeros(len(CLASS_NAMES), dtype=np.int64)
    few = counts.copy()
    few[9] = 3  # too few output spikes to count, all for one class
    shares = np.zeros(len(CLASS_NAMES))
    shares[9] = 1.0
    named = Decision(9, 0.62, shares, few, 0, 0)
    assert confidence_text(named) == "62% of the output spikes"
    assert confidence_text(Decision(None, 1.0, shares, few, 0, 0)) == "3 spikes, top 100%"
    split = counts.copy()
    split[[2, 4, 7]] = (1, 2, 1)  # this window's shares, whatever the smoothed scores (all 0 here)
    assert confidence_text(Decision(None, 0.0, np.zeros(len(CLASS_NAMES)), split, 0, 0)) == "4 spikes, top 50%"
    one = counts.copy()
    one[2] = 1
    assert confidence_text(Decision(None, 0.25, shares, one, 0, 0)) == "1 spike, top 100%"
    assert confidence_text(Decision(None, 0.0, np.zeros(len(CLASS_NAMES)), counts, 0, 0)) == "no output spikes"
    assert confidence_text(Decision(None, 0.0, shares, few, 0, 0, quiet=True)) == "the scene is quiet"
