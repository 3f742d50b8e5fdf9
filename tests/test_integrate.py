"""The integrator against the training reference (SpikingJelly + F.interpolate), run verbatim."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.events import DVS128_SIZE, make_events
from livegesture.integrate import (
    BinarizedResize,
    SlidingIntegrator,
    equal_count_bounds,
    integrate_sample,
)
from livegesture.reference import reference_frames


def random_events(rng: np.random.Generator, n: int, sensor_size=DVS128_SIZE, t0: int = 0) -> np.ndarray:
    width, height = sensor_size
    return make_events(
        t0 + np.sort(rng.integers(0, 5_000_000, n)),
        rng.integers(0, width, n),
        rng.integers(0, height, n),
        rng.integers(0, 2, n),
    )


@pytest.mark.parametrize("seed", range(40))
def test_offline_transform_matches_reference_on_random_streams(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 5, 9, 10, 11, 37, 1000, 20_000]))
    frames = int(rng.integers(1, 16))
    events = random_events(rng, n)
    np.testing.assert_array_equal(integrate_sample(events, frames, DVS128_SIZE),
                                  reference_frames(events, frames, DVS128_SIZE))


@pytest.mark.parametrize("sensor_size", [(346, 260), (240, 180), (64, 64), (63, 63), (30, 20), (7, 5), (1, 1)])
def test_offline_transform_matches_reference_on_other_sensor_sizes(sensor_size):
    rng = np.random.default_rng(sum(sensor_size))
    for n, frames in [(3000, 10), (50, 3), (4, 10)]:
        events = random_events(rng, n, sensor_size)
        np.testing.assert_array_equal(integrate_sample(events, frames, sensor_size),
                                      reference_frames(events, frames, sensor_size))


def test_edge_cases_match_reference():
    # one hot pixel, a single polarity, clustered corners, repeated events on one pixel
    n = 5000
    cases = {
        "hot pixel": make_events(np.arange(n), np.full(n, 77), np.full(n, 13), np.ones(n)),
        "only OFF": make_events(np.arange(n), np.arange(n) % 128, (np.arange(n) * 7) % 128, np.zeros(n)),
        "corners": make_events(np.arange(4), [0, 127, 0, 127], [0, 0, 127, 127], [1, 0, 1, 0]),
        "fewer events than frames": make_events(np.arange(3), [5, 6, 7], [8, 9, 10], [1, 1, 0]),
    }
    for name, events in cases.items():
        for frames in (1, 10):
            np.testing.assert_array_equal(integrate_sample(events, frames, DVS128_SIZE),
                                          reference_frames(events, frames, DVS128_SIZE), err_msg=name)


def test_hand_computed_corner_pixels_and_channel_order():
    # 128 -> 63: output 0 samples input rows/cols 0 and 1; output 62 samples 126 and 127
    events = make_events([0, 1], [0, 127], [0, 127], [1, 0])
    frame = integrate_sample(events, 1, DVS128_SIZE)[0]
    expected = np.zeros((2, 63, 63), dtype=np.uint8)
    expected[1, 0, 0] = 1  # ON event -> channel 1
    expected[0, 62, 62] = 1  # OFF event -> channel 0
    np.testing.assert_array_equal(frame, expected)


def test_equal_count_bounds_follow_spikingjelly_split():
    np.testing.assert_array_equal(equal_count_bounds(23, 4), [[0, 5], [5, 10], [10, 15], [15, 23]])
    np.testing.assert_array_equal(equal_count_bounds(3, 5), [[0, 0], [0, 0], [0, 0], [0, 0], [0, 3]])
    with pytest.raises(ValueError, match="frames"):
        equal_count_bounds(10, 0)


def test_resize_of_identical_size_is_identity():
    rng = np.random.default_rng(3)
    occupied = rng.random((2, 63, 63)) > 0.7
    np.testing.assert_array_equal(BinarizedResize((63, 63))(occupied), occupied.astype(np.uint8))


@pytest.mark.parametrize("seed", range(6))
def test_sliding_integrator_equals_offline_transform_on_same_event_ranges(seed):
    rng = np.random.default_rng(100 + seed)
    events_per_frame = int(rng.integers(1, 3000))
    frames_per_window = int(rng.integers(1, 12))
    events = random_events(rng, int(rng.integers(0, 40_000)))
    integrator = SlidingIntegrator(DVS128_SIZE, events_per_frame, frames_per_window)

    emitted = []
    start = 0
    while start < len(events):  # batches of any size, from 1 event to several frames
        size = int(rng.choice([1, 7, 1000, 4096, 3 * events_per_frame + 5]))
        emitted += integrator.push(events[start:start + size])
        start += size
        k = len(emitted)
        if k:  # after each batch the window equals the offline transform of its events
            lo = max(0, k - frames_per_window) * events_per_frame
            np.testing.assert_array_equal(
                integrator.window_array(),
                integrate_sample(events[lo:k * events_per_frame], min(k, frames_per_window), DVS128_SIZE))

    assert len(emitted) == len(events) // events_per_frame
    assert integrator.pending_events == len(events) % events_per_frame
    for frame in emitted:
        lo, hi = frame.index * events_per_frame, (frame.index + 1) * events_per_frame
        np.testing.assert_array_equal(frame.data, reference_frames(events[lo:hi], 1, DVS128_SIZE)[0])
        assert (frame.t_first_us, frame.t_last_us) == (events["t"][lo], events["t"][hi - 1])


def test_sliding_integrator_window_is_bounded_and_reset_forgets():
    rng = np.random.default_rng(7)
    integrator = SlidingIntegrator(DVS128_SIZE, events_per_frame=100, frames_per_window=3)
    integrator.push(random_events(rng, 1050))
    assert [f.index for f in integrator.window] == [7, 8, 9]
    assert integrator.pending_events == 50
    integrator.reset()
    assert integrator.window == [] and integrator.pending_events == 0
    fresh = random_events(rng, 100)
    (frame,) = integrator.push(fresh)
    assert frame.index == 0  # the 50 events before the reset are not part of it
    np.testing.assert_array_equal(frame.data, integrate_sample(fresh, 1, DVS128_SIZE)[0])


def test_sliding_integrator_rejects_bad_settings():
    with pytest.raises(ValueError, match="events_per_frame"):
        SlidingIntegrator(DVS128_SIZE, events_per_frame=0)
    with pytest.raises(ValueError, match="frames_per_window"):
        SlidingIntegrator(DVS128_SIZE, events_per_frame=10, frames_per_window=0)
