"""The one event representation used across livegesture.

Events are a numpy structured array of dtype :data:`EVENT_DTYPE` with fields
``t`` (int64 microseconds), ``x``, ``y`` (uint16 pixel coordinates) and ``p``
(uint8 polarity, 1 = ON, 0 = OFF), sorted by ``t``. The sensor size travels
beside the array, as ``(width, height)`` like dv-processing's resolutions.

All validation lives here: :func:`validate_events` checks one batch,
:class:`StreamValidator` also checks ordering across batches.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])

SensorSize = tuple[int, int]
"""Sensor size as ``(width, height)``."""

DVS128_SIZE: SensorSize = (128, 128)

OutOfRange = Literal["error", "drop"]


class LivegestureError(Exception):
    """An error whose message is written for the user: the CLI and the GUI show it as it is."""


def error_message(stage: str, err: BaseException) -> str:
    """A one-line message for a failure in ``stage``: a user-facing error as it is, others with their type."""
    text = str(err) if isinstance(err, LivegestureError) else f"{type(err).__name__}: {err}"
    return f"{stage}: {text}"


class EventFormatError(LivegestureError, ValueError):
    """Events or a recording that cannot be used; the message names the source."""

    def __init__(self, source: object, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def empty_events() -> np.ndarray:
    """A zero-length event array."""
    return np.zeros(0, dtype=EVENT_DTYPE)


def make_events(t, x, y, p) -> np.ndarray:
    """Build an event array from four equal-length columns (no validation)."""
    columns = [np.asarray(c) for c in (t, x, y, p)]
    lengths = {c.shape for c in columns}
    if len(lengths) != 1 or columns[0].ndim != 1:
        raise ValueError(f"event columns must be 1-D and of equal length, got shapes {[c.shape for c in columns]}")
    events = np.empty(columns[0].shape[0], dtype=EVENT_DTYPE)
    for name, column in zip(EVENT_DTYPE.names, columns):
        events[name] = column
    return events


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_events` repaired."""

    dropped_out_of_range: int = 0


PARALLEL_MIN_EVENTS = 1 << 20
"""Batches at least this long are summarised on several threads (numpy releases the GIL)."""


def available_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


NUMPY_THREADS = min(4, available_cores())
"""Threads for the long numpy passes over recordings (validation, AEDAT 3.1 decoding): numpy's
loops release the GIL, so they use the cores this process may run on (at most 4)."""


class _Summary(NamedTuple):
    """What validation needs to know of a batch, in one pass per column."""

    unsorted: bool
    max_p: int
    max_x: int
    max_y: int


def _summarise(events: np.ndarray, lo: int, hi: int) -> _Summary:
    t = events["t"][lo:hi + 1]  # one more: the order across the boundary with the next range
    part = events[lo:hi]
    return _Summary(bool((t[1:] < t[:-1]).any()), int(part["p"].max()), int(part["x"].max()), int(part["y"].max()))


def _summary(events: np.ndarray) -> _Summary:
    """:class:`_Summary` of a non-empty batch; long batches in parallel ranges."""
    if len(events) < PARALLEL_MIN_EVENTS or NUMPY_THREADS == 1:
        return _summarise(events, 0, len(events))
    bounds = np.linspace(0, len(events), NUMPY_THREADS + 1).astype(int).tolist()
    with ThreadPoolExecutor(NUMPY_THREADS) as pool:
        parts = list(pool.map(lambda r: _summarise(events, *r), zip(bounds[:-1], bounds[1:])))
    return _Summary(any(p.unsorted for p in parts), *(max(column) for column in list(zip(*parts))[1:]))


def validate_events(
    events: np.ndarray,
    sensor_size: SensorSize,
    source: object = "events",
    *,
    out_of_range: OutOfRange = "error",
    previous_t: int | None = None,
) -> tuple[np.ndarray, ValidationReport]:
    """Check one batch and return it (possibly repaired) with a report.

    Raises :class:`EventFormatError` naming ``source`` for a wrong dtype, a
    polarity other than 0/1, timestamps that go backwards (also relative to
    ``previous_t``, the last timestamp of the batch before), or coordinates
    outside ``sensor_size`` when ``out_of_range="error"``. With
    ``out_of_range="drop"`` such events are removed and counted instead.
    """
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
        found = getattr(events, "dtype", type(events).__name__)
        raise EventFormatError(source, f"expected events of dtype {EVENT_DTYPE}, got {found}")
    if events.ndim != 1:
        raise EventFormatError(source, f"expected a 1-D event array, got shape {events.shape}")
    width, height = sensor_size
    if width <= 0 or height <= 0:
        raise EventFormatError(source, f"invalid sensor size {sensor_size}")
    if events.size == 0:
        return events, ValidationReport()

    t = events["t"]
    if previous_t is not None and t[0] < previous_t:
        raise EventFormatError(
            source, f"timestamps go backwards between batches: {t[0]} us after {previous_t} us"
        )
    summary = _summary(events)
    if summary.unsorted:
        backwards = np.flatnonzero(t[1:] < t[:-1])
        i = int(backwards[0])
        raise EventFormatError(
            source,
            f"timestamps are not sorted: event {i + 1} at {t[i + 1]} us follows {t[i]} us "
            f"({backwards.size} such places)",
        )
    if summary.max_p > 1:
        raise EventFormatError(source, f"polarity must be 0 or 1, found {summary.max_p}")

    if summary.max_x < width and summary.max_y < height:  # the usual case: no mask to build
        return events, ValidationReport()
    outside = (events["x"] >= width) | (events["y"] >= height)
    n_outside = int(np.count_nonzero(outside))
    if n_outside:
        if out_of_range == "error":
            i = int(np.flatnonzero(outside)[0])
            raise EventFormatError(
                source,
                f"{n_outside} events lie outside the {width}x{height} sensor, the first at "
                f"x={events['x'][i]}, y={events['y'][i]} (event {i})",
            )
        events = events[~outside]
    return events, ValidationReport(dropped_out_of_range=n_outside)


class StreamValidator:
    """Validates consecutive batches of one stream and counts repairs."""

    def __init__(self, sensor_size: SensorSize, source: object, out_of_range: OutOfRange = "error") -> None:
        self.sensor_size = sensor_size
        self.source = source
        self.out_of_range = out_of_range
        self.dropped_out_of_range = 0
        self._last_t: int | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        checked, report = validate_events(
            events, self.sensor_size, self.source, out_of_range=self.out_of_range, previous_t=self._last_t
        )
        self.dropped_out_of_range += report.dropped_out_of_range
        if events.size:  # order is a property of the whole stream, dropped events included
            self._last_t = int(events["t"][-1])
        return checked
