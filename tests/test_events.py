"""Validation of the one event representation."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture import events as events_module
from livegesture.events import (
    DVS128_SIZE,
    EVENT_DTYPE,
    EventFormatError,
    StreamValidator,
    empty_events,
    make_events,
    validate_events,
)


def test_make_events_builds_the_structured_array():
    events = make_events([1, 2], [3, 4], [5, 6], [0, 1])
    assert events.dtype == EVENT_DTYPE
    assert events.dtype.names == ("t", "x", "y", "p")
    assert events[1].tolist() == (2, 4, 6, 1)
    with pytest.raises(ValueError, match="equal length"):
        make_events([1, 2], [3], [5, 6], [0, 1])


def test_valid_events_pass_unchanged():
    events = make_events([1, 1, 5], [0, 127, 64], [127, 0, 64], [0, 1, 1])
    checked, report = validate_events(events, DVS128_SIZE, "rec.aedat")
    assert checked is events and report.dropped_out_of_range == 0
    assert validate_events(empty_events(), DVS128_SIZE)[0].size == 0


def test_unsorted_timestamps_name_the_source_and_place():
    events = make_events([1, 5, 3, 9, 8], [0] * 5, [0] * 5, [1] * 5)
    with pytest.raises(EventFormatError, match=r"rec\.aedat: timestamps are not sorted: event 2 at 3 us follows 5 us \(2 such places\)"):
        validate_events(events, DVS128_SIZE, "rec.aedat")


def test_out_of_range_is_an_error_or_dropped_and_counted():
    events = make_events([1, 2, 3, 4], [0, 128, 5, 3], [0, 0, 300, 127], [1, 0, 1, 0])
    with pytest.raises(EventFormatError, match=r"cam: 2 events lie outside the 128x128 sensor, the first at x=128, y=0"):
        validate_events(events, DVS128_SIZE, "cam")
    kept, report = validate_events(events, DVS128_SIZE, "cam", out_of_range="drop")
    assert report.dropped_out_of_range == 2
    np.testing.assert_array_equal(kept, events[[0, 3]])


def test_wrong_dtype_shape_and_polarity_are_errors():
    with pytest.raises(EventFormatError, match="expected events of dtype"):
        validate_events(np.zeros(3, dtype=[("t", "<i4"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")]), DVS128_SIZE)
    with pytest.raises(EventFormatError, match="expected events of dtype"):
        validate_events([1, 2, 3], DVS128_SIZE)
    with pytest.raises(EventFormatError, match="1-D"):
        validate_events(np.zeros((2, 2), dtype=EVENT_DTYPE), DVS128_SIZE)
    with pytest.raises(EventFormatError, match="polarity must be 0 or 1, found 2"):
        validate_events(make_events([1], [1], [1], [2]), DVS128_SIZE)


def test_stream_validator_checks_order_across_batches_and_counts_drops():
    validate = StreamValidator(DVS128_SIZE, "live", out_of_range="drop")
    validate(make_events([10, 20], [1, 200], [1, 1], [1, 1]))
    validate(empty_events())
    validate(make_events([20, 30], [1, 2], [1, 999], [0, 0]))
    assert validate.dropped_out_of_range == 2
    with pytest.raises(EventFormatError, match="live: timestamps go backwards between batches: 25 us after 30 us"):
        validate(make_events([25], [1], [1], [1]))


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_parallel_validation_finds_what_a_serial_one_does(monkeypatch, threads):
    """Long batches are checked in ranges on threads: a fault exactly on a range boundary, or in
    the last range, must still be found and reported as the serial check reports it."""
    n = 1000
    bounds = np.linspace(0, n, threads + 1).astype(int)
    rng = np.random.default_rng(threads)
    good = make_events(np.arange(n), rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))

    def check(events):
        monkeypatch.setattr(events_module, "PARALLEL_MIN_EVENTS", 10**9)
        try:
            validate_events(events, DVS128_SIZE, "serial")
            serial = None
        except EventFormatError as err:
            serial = err.problem
        monkeypatch.setattr(events_module, "PARALLEL_MIN_EVENTS", 1)
        monkeypatch.setattr(events_module, "NUMPY_THREADS", threads)
        try:
            validate_events(events, DVS128_SIZE, "parallel")
            parallel = None
        except EventFormatError as err:
            parallel = err.problem
        return serial, parallel

    assert check(good) == (None, None)
    for at in (int(bounds[1]), int(bounds[-2]), n - 1):
        unsorted = good.copy()
        unsorted["t"][at] = -1  # goes back at ``at``: between two ranges when ``at`` is a boundary
        serial, parallel = check(unsorted)
        assert serial == parallel and f"event {at} at -1 us" in parallel
        for field, value, message in (("x", 128, "outside the 128x128"), ("y", 200, "outside the 128x128"),
                                      ("p", 3, "polarity must be 0 or 1, found 3")):
            bad = good.copy()
            bad[field][at] = value
            serial, parallel = check(bad)
            assert serial == parallel and message in parallel
