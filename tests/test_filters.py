"""The noise filter wrappers, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.events import DVS128_SIZE, make_events
from livegesture.filters import BACKGROUND_ACTIVITY, FAST_DECAY, K_NEAREST, NOISE_FILTER_KINDS, NoiseFilter

T0 = 10_000_000  # dv's timestamp map starts at 0: keep test streams away from t = 0


def test_isolated_events_are_removed_and_supported_ones_kept():
    noise = NoiseFilter(DVS128_SIZE, BACKGROUND_ACTIVITY, window_us=2000)
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
    noise = NoiseFilter(DVS128_SIZE, BACKGROUND_ACTIVITY, window_us=2000)
    first = make_events([T0], [40], [40], [1])
    second = make_events([T0 + 1999, T0 + 6000], [41, 41], [41, 41], [0, 1])
    assert len(noise(first)) == 0
    np.testing.assert_array_equal(noise(second), second[:1])
    assert len(noise(second[:0])) == 0


def test_bad_duration_is_refused():
    with pytest.raises(ValueError, match="window_us"):
        NoiseFilter(DVS128_SIZE, window_us=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        NoiseFilter(DVS128_SIZE, "median")


def test_window_decides_what_the_background_activity_filter_keeps():
    # the neighbour fired 3000 us before: kept with a 5 ms window, removed with dv's 2 ms
    events = make_events(T0 + np.array([0, 3000]), [20, 21], [20, 20], [1, 1])
    assert len(NoiseFilter(DVS128_SIZE, BACKGROUND_ACTIVITY, window_us=5000)(events)) == 1
    assert len(NoiseFilter(DVS128_SIZE, BACKGROUND_ACTIVITY, window_us=2000)(events)) == 0


@pytest.mark.parametrize("kind", NOISE_FILTER_KINDS)
def test_every_kind_removes_isolated_noise_and_keeps_a_dense_edge(kind):
    rng = np.random.default_rng(0)
    # a dense moving edge: 40 rows x 30 steps, every pixel of the edge fires at each step
    steps, rows = np.meshgrid(np.arange(30), np.arange(40, 80), indexing="ij")
    edge = make_events(T0 + steps.ravel() * 200, 30 + steps.ravel(), rows.ravel(), np.ones(steps.size))
    # sparse noise far from the edge: one event per 500 us at random pixels of the right half
    noise_t = T0 + np.arange(12) * 500
    noise = make_events(noise_t, rng.integers(90, 128, 12), rng.integers(0, 128, 12), np.zeros(12))
    stream = np.concatenate([edge, noise])
    stream = stream[np.argsort(stream["t"], kind="stable")]
    kept = NoiseFilter(DVS128_SIZE, kind, window_us=10_000)(stream)
    assert np.count_nonzero(kept["x"] >= 90) <= 2  # nearly all isolated events removed
    assert np.count_nonzero(kept["x"] < 90) >= 0.5 * len(edge)  # most of the edge survives
    assert FAST_DECAY in NOISE_FILTER_KINDS and K_NEAREST in NOISE_FILTER_KINDS
