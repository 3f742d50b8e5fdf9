"""Timestamp resets: found with their place, rebased or split, the same across batch boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.events import EventFormatError, make_events
from livegesture.sources.labels import GestureSegment
from livegesture.sources.resets import SPLIT_GAP_US, ResetHandler, resolve_resets, shift_labels


def stream(times: list[int]) -> np.ndarray:
    n = len(times)
    return make_events(times, np.zeros(n), np.zeros(n), np.ones(n))


# a camera restarted twice: parts [100, 200], [5, 50], [0, 7]
TIMES = [100, 150, 200, 5, 50, 0, 7]


@pytest.mark.parametrize("on_reset, expected", [
    ("rebase", [100, 150, 200, 200, 245, 245, 252]),
    ("split", [100, 150, 200, 200 + SPLIT_GAP_US, 245 + SPLIT_GAP_US, 245 + 2 * SPLIT_GAP_US,
               252 + 2 * SPLIT_GAP_US]),
])
def test_parts_are_shifted_by_hand_computed_amounts(on_reset, expected):
    events, resets = resolve_resets(stream(TIMES), on_reset, "rec")
    assert events["t"].tolist() == expected
    assert [(r.index, r.before_us, r.after_us) for r in resets] == [(3, 200, 5), (5, 50, 0)]


@pytest.mark.parametrize("on_reset", ["rebase", "split"])
@pytest.mark.parametrize("cut", [1, 3, 4, 5, 6])
def test_batches_give_the_whole_array_result(on_reset, cut):
    whole, resets = resolve_resets(stream(TIMES), on_reset, "rec")
    handler = ResetHandler(on_reset, "rec")
    events = stream(TIMES)
    batched = np.concatenate([handler(events[:cut]), handler(events[cut:])])
    assert np.array_equal(batched, whole) and tuple(handler.resets) == resets


def test_error_names_the_first_reset_across_batches():
    handler = ResetHandler("error", "rec.aedat4")
    handler(stream(TIMES[:3]))
    with pytest.raises(EventFormatError, match=r"rec.aedat4: timestamp reset at event 3: time goes from 200 us "
                                               r"back to 5 us \(2 such places"):
        handler(stream(TIMES[3:]))


def test_sorted_streams_are_untouched():
    events = stream([1, 2, 2, 3])
    out, resets = resolve_resets(events, "error", "rec")
    assert out is events and resets == ()


def test_labels_follow_their_parts():
    _, resets = resolve_resets(stream(TIMES), "rebase", "rec")
    segments = [GestureSegment(0, 100, 150), GestureSegment(1, 160, 200),  # part 1
                GestureSegment(2, 5, 40),                                  # part 2: starts before the row above
                GestureSegment(3, 1, 6)]                                   # part 3
    moved = shift_labels(segments, resets)
    assert [(s.start_us, s.end_us) for s in moved] == [(100, 150), (160, 200), (200, 235), (246, 251)]
    assert [s.label for s in moved] == [0, 1, 2, 3]
