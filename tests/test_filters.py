"""The background-activity filter wrapper, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.events import DVS128_SIZE, make_events
from livegesture.filters import BackgroundActivityFilter

T0 = 10_000_000  # dv's timestamp map starts at 0: keep test streams away from t = 0


def test_isolated_events_are_removed_and_supported_ones_kept():
    noise = BackgroundActivityFilter(DVS128_SIZE, duration_us=2000)
    events = make_events(
        T0 + np.array([0, 1000, 1500, 5000, 5100]),
        [10, 11, 100, 12, 50],
        [10, 10, 100, 10, 50],
        [1, 0, 1, 1, 1])
    kept = noise(events)
    # (11,10) at +1000 has its neighbour (10,10) 1000 us before; (12,10) at +5000 is 4000 us
    # after its neighbour; the others have no neighbour at all
    np.testing.assert_array_equal(kept, events[[1]])
    assert (noise.events_in, noise.events_out) == (5, 1)


def test_support_carries_across_batches():
    noise = BackgroundActivityFilter(DVS128_SIZE, duration_us=2000)
    first = make_events([T0], [40], [40], [1])
    second = make_events([T0 + 1999, T0 + 6000], [41, 41], [41, 41], [0, 1])
    assert len(noise(first)) == 0
    np.testing.assert_array_equal(noise(second), second[:1])
    assert len(noise(second[:0])) == 0


def test_bad_duration_is_refused():
    with pytest.raises(ValueError, match="duration_us"):
        BackgroundActivityFilter(DVS128_SIZE, duration_us=0)
