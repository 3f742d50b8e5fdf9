"""Paced replay of a recording: events come out when their timestamps say, scaled by a speed."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from livegesture.sources.base import EventSource

DEFAULT_MAX_BATCH_US = 10_000
US_PER_S = 1_000_000
MAX_SLEEP_S = 0.05
"""Longest single sleep, so that pause, speed changes and close act promptly."""
MAX_LAG_S = 0.25
"""A consumer this far behind schedule re-anchors the pacing instead of getting a burst."""


def _checked_speed(speed: float | None) -> float | None:
    """``None`` for as fast as possible (also ``math.inf``); else a positive factor."""
    if speed is None or speed == math.inf:
        return None
    if not speed > 0:
        raise ValueError(f"speed must be positive, None or math.inf, got {speed}")
    return float(speed)


def time_slices(events: np.ndarray, max_batch_us: int) -> list[np.ndarray]:
    """Cut a sorted batch where ``t // max_batch_us`` changes: each slice spans less than ``max_batch_us``."""
    if events.size == 0:
        return []
    cell = events["t"] // max_batch_us
    return np.split(events, np.flatnonzero(cell[1:] != cell[:-1]) + 1)


class ReplaySource(EventSource):
    """Replays another source paced by event time; thread-safe controls for a GUI.

    ``speed=1.0`` is real time, ``speed=N`` N times faster, ``None`` (or ``math.inf``)
    as fast as possible. Batches are cut into slices of less than ``max_batch_us`` of
    event time; a slice is released when the replay clock reaches its last event, the
    replay clock starting at the first event. ``clock`` and ``sleep`` are injectable
    (defaults ``time.monotonic`` and ``time.sleep``); sleeps last at most ``MAX_SLEEP_S``.
    ``speed`` can be set and ``pause()``/``resume()`` called from any thread while
    another iterates; a pause blocks iteration and freezes the replay clock. While paused,
    ``step(events)`` releases whole slices at once until at least ``events`` have gone out;
    the frozen clock moves to the last one, so ``resume()`` goes on from there.

    ``loop=True`` iterates the wrapped source again at its end (recordings restart on
    each ``iter()``), adding ``offset_us`` to later passes so time never goes backwards:
    the first event of a pass gets the timestamp of the last event of the pass before.
    ``offset_us`` is that of the batch last yielded (0 in the first pass), for matching labels.
    Nothing is lost or reordered. ``close()`` ends iteration and closes the wrapped source.
    """

    def __init__(self, source: EventSource, *, speed: float | None = 1.0, max_batch_us: int = DEFAULT_MAX_BATCH_US,
                 loop: bool = False, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_batch_us < 1:
            raise ValueError(f"max_batch_us must be at least 1, got {max_batch_us}")
        self.source = source
        self.name = source.name
        self.sensor_size = source.sensor_size
        self.labels = source.labels
        self.max_batch_us = max_batch_us
        self.loop = loop
        self.offset_us = 0
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._speed = _checked_speed(speed)
        self._paused = False
        self._closed = False
        self._step_events = 0
        """Events still to release while paused (see :meth:`step`)."""
        self._anchor: tuple[float, float] | None = None
        """(clock time, event time in us) that pin the replay clock; None until the next slice."""

    @property
    def speed(self) -> float | None:
        with self._cond:
            return self._speed

    @speed.setter
    def speed(self, speed: float | None) -> None:
        speed = _checked_speed(speed)
        with self._cond:
            if speed is None or self._speed is None:
                self._anchor = None  # pacing restarts at the next slice
            elif self._anchor is not None and not self._paused:
                now = self._clock()
                self._anchor = (now, self._position(now))
            self._speed = speed
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    def pause(self) -> None:
        with self._cond:
            if not self._paused and self._anchor is not None and self._speed is not None:
                self._anchor = (math.nan, self._position(self._clock()))  # frozen event time
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            if self._paused and self._anchor is not None:
                self._anchor = (self._clock(), self._anchor[1])
            self._paused = False
            self._step_events = 0
            self._cond.notify_all()

    def step(self, events: int = 1) -> None:
        """While paused, release slices until at least ``events`` more events have gone out (at
        least one slice; steps add up); does nothing while playing."""
        with self._cond:
            if self._paused:
                self._step_events = max(self._step_events, 0) + max(events, 1)
                self._cond.notify_all()

    def _position(self, now: float) -> float:
        """Replay clock in event-time us (caller holds the lock; anchored, paced, running)."""
        wall, t = self._anchor
        return t + (now - wall) * self._speed * US_PER_S

    def _release(self, first_t: int, last_t: int, size: int) -> bool:
        """Wait until the slice ``[first_t, last_t]`` of ``size`` events is due; False when closed."""
        while True:
            with self._cond:
                while self._paused and not self._closed and self._step_events <= 0:
                    self._cond.wait()
                if self._closed:
                    return False
                if self._paused:  # a step
                    self._step_events -= size
                    self._anchor = (math.nan, last_t)  # the frozen replay clock: resume goes on from here
                    return True
                if self._speed is None:
                    return True
                now = self._clock()
                if self._anchor is None:
                    self._anchor = (now, first_t)
                wall, t = self._anchor
                delay = wall + (last_t - t) / (self._speed * US_PER_S) - now
                if delay <= 0:
                    if delay < -MAX_LAG_S:
                        self._anchor = (now, last_t)
                    return True
            self._sleep(min(delay, MAX_SLEEP_S))

    def __iter__(self) -> Iterator[np.ndarray]:
        with self._cond:
            self._anchor = None
        offset = 0
        last_t: int | None = None
        while True:
            first_of_pass = True
            for batch in self.source:
                for piece in time_slices(batch, self.max_batch_us):
                    if first_of_pass:
                        first_of_pass = False
                        if last_t is not None:
                            offset = last_t - int(piece["t"][0])
                    if offset:
                        piece = piece.copy()
                        piece["t"] += offset
                    if not self._release(int(piece["t"][0]), int(piece["t"][-1]), len(piece)):
                        return
                    last_t = int(piece["t"][-1])
                    self.offset_us = offset
                    yield piece
            if not self.loop or first_of_pass or self._closed:
                return

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.source.close()
