"""Training samples drawn from continuous recordings exactly as the live pipeline sees them.

The live pipeline integrates a continuous stream with the sliding equal-count integrator
(:class:`~livegesture.integrate.SlidingIntegrator`) and decides on windows of ``clear_every``
consecutive frames at whatever offset the stream is at: partial gestures, gestures of any
length, a person standing still. A model trained only on whole, aligned gestures (the
reference per-sample transform) fails there. This module draws such live windows:

* a **window** is ``frames`` consecutive equal-count frames of ``events_per_frame`` events
  starting at any event ``start`` of a recording: exactly the frames a
  :class:`SlidingIntegrator` fed ``events[start:]`` emits first (and frames ``k..k+frames`` of
  one fed the whole stream when ``start = k * events_per_frame``);
* its **label** is what the streaming score expects of the decision made on it
  (:func:`window_label`): the gesture active at the window's last event when enough of the
  window lies inside it; :data:`IDLE` (target: no output spikes, i.e. "no gesture" through
  ``min_output_spikes``) when it ends outside every gesture and not too much of it lies in
  one; ambiguous windows (a gesture just begun, or just ended) are not drawn. How much is
  enough is the model's :class:`WindowRange` (``min_inside``, ``max_idle_overlap``): the
  narrower that band, the closer the targets to the score, and the sooner the net must tell
  a gesture begun or ended;
* ``events_per_frame`` is drawn log-uniformly from a range, so one model serves the usual
  window settings; an event-thinning factor draws the same scene at a lower event rate.
* **time stretch** needs no augmentation of its own: equal-count frames and the labels' time
  shares do not change when a recording's clock is scaled, so a window of a gesture played
  slower or faster is the same window (the tests check it). What a different speed does
  change is how much of the motion a window spans, which the ``events_per_frame`` range
  covers, and the motion itself, which the generator varies per clip (its tempo spread).

Whole-gesture samples of the reference transform (10 equal-count frames of one labelled
gesture, as the reference deployment runs) can be mixed in, so that the same model keeps its
per-sample accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from livegesture.events import SensorSize
from livegesture.integrate import CHANNELS, BinarizedResize, equal_count_bounds, flat_pixels
from livegesture.sources.labels import GestureSegment

if TYPE_CHECKING:
    from livegesture.sources.dataset import DvsGestureFolder

IDLE = -1
"""Label of a window that touches no gesture: the net must stay silent."""
MIN_INSIDE = 0.5
"""Default share of a window's time span that must lie inside the gesture active at its end."""
MAX_IDLE_OVERLAP = 0.4
"""Default share of an idle window's span that may lie in a gesture that has ended: its decision
is held to "no gesture", and the net must learn to end a gesture's spikes once its motion stops."""


MAX_ATTEMPTS = 200
"""Draws of one kind of window before the sessions are declared unfit for it."""


@dataclass(frozen=True)
class WindowRange:
    """The live windows a model is trained for (recorded in the model file)."""

    events_per_frame: tuple[int, int] = (500, 1600)
    """Range of ``events_per_frame`` drawn (log-uniform)."""
    frames: int = 10
    """Frames per window: the live pipeline's ``clear_every``."""
    drain_steps: int = 6
    keep: tuple[float, float] = (0.6, 1.0)
    """Range of the share of events kept (event-rate augmentation)."""
    idle_share: float = 0.4
    """Share of the live windows drawn from idle periods."""
    whole_share: float = 0.2
    """Share of all samples that are whole gestures in the reference transform."""
    min_inside: float = MIN_INSIDE
    """A gesture window's least share inside its gesture (see :func:`window_label`)."""
    max_idle_overlap: float = MAX_IDLE_OVERLAP
    """An idle window's largest share in a gesture that has ended (see :func:`window_label`)."""

    def __post_init__(self) -> None:
        low, high = self.events_per_frame
        if not 1 <= low <= high:
            raise ValueError(f"events_per_frame range must satisfy 1 <= low <= high, got {self.events_per_frame}")
        if self.frames < 1 or self.drain_steps < 0:
            raise ValueError(f"need frames >= 1 and drain_steps >= 0, got {self.frames}, {self.drain_steps}")
        if not 0 < self.keep[0] <= self.keep[1] <= 1:
            raise ValueError(f"keep range must lie in (0, 1], got {self.keep}")
        if not (0 <= self.idle_share <= 1 and 0 <= self.whole_share <= 1):
            raise ValueError(f"idle_share and whole_share must lie in [0, 1], got {self.idle_share}, "
                             f"{self.whole_share}")
        if not (0 < self.min_inside <= 1 and 0 <= self.max_idle_overlap < 1):
            raise ValueError(f"need 0 < min_inside <= 1 and 0 <= max_idle_overlap < 1, got {self.min_inside}, "
                             f"{self.max_idle_overlap}")


@dataclass(frozen=True, eq=False)
class Session:
    """One continuous labelled recording, compact: flat pixel index and time per event."""

    pixels: np.ndarray
    """``p * H * W + y * W + x`` per event (uint16 for a 128x128 sensor)."""
    t: np.ndarray
    """Timestamps, microseconds, sorted (uint32 when they fit, else int64)."""
    segments: tuple[GestureSegment, ...]
    sensor_size: SensorSize
    group: int
    """Who it shows (the user): samples are split by it."""
    name: str

    @classmethod
    def of(cls, events: np.ndarray, segments: Sequence[GestureSegment], sensor_size: SensorSize, group: int,
           name: str) -> Session:
        width, height = sensor_size
        dtype = np.uint16 if CHANNELS * width * height <= 1 << 16 else np.uint32
        t = events["t"]
        compact = len(t) == 0 or (t[0] >= 0 and t[-1] < 1 << 32)  # an hour of microseconds in 4 bytes
        return cls(flat_pixels(events, sensor_size).astype(dtype),
                   np.ascontiguousarray(t, dtype=np.uint32 if compact else np.int64),
                   tuple(segments), sensor_size, group, name)

    def __len__(self) -> int:
        return len(self.t)

    def gesture_events(self, segment: GestureSegment) -> tuple[int, int]:
        """Index range of the events with ``start_us <= t < end_us`` (SpikingJelly's cut)."""
        lo, hi = np.searchsorted(self.t, [segment.start_us, segment.end_us], side="left")
        return int(lo), int(hi)


def frames_of(pixels: np.ndarray, bounds: np.ndarray, resize: BinarizedResize) -> np.ndarray:
    """Binarized frames of flat-indexed events, frame ``i`` covering ``pixels[lo_i:hi_i]`` for
    ``bounds[i] = (lo_i, hi_i)``: ``(frames, 2, out, out)`` uint8."""
    width, height = resize.sensor_size
    occupied = np.zeros((len(bounds), CHANNELS * height * width), dtype=bool)
    for i, (lo, hi) in enumerate(bounds):
        occupied[i, pixels[lo:hi]] = True
    return resize(occupied.reshape(len(bounds), CHANNELS, height, width))


def sliding_bounds(events_per_frame: int, frames: int) -> np.ndarray:
    """The sliding integrator's frames from a window's first event: ``[k * n, (k + 1) * n)``."""
    starts = np.arange(frames) * events_per_frame
    return np.stack([starts, starts + events_per_frame], axis=1)


def window_label(t_first: int, t_last: int, segments: Sequence[GestureSegment], min_inside: float = MIN_INSIDE,
                 max_idle_overlap: float = MAX_IDLE_OVERLAP) -> int | None:
    """The target of a window spanning ``[t_first, t_last]``, as the streaming score holds a
    decision made at ``t_last``: when a gesture is active at ``t_last``, its class if at least
    ``min_inside`` of the span lies inside it, else None (ambiguous: not a training sample);
    when none is, :data:`IDLE` if no gesture covers more than ``max_idle_overlap`` of the span,
    else None."""
    span = max(t_last - t_first, 1)
    largest = 0.0
    for segment in segments:
        share = max(min(t_last, segment.end_us) - max(t_first, segment.start_us), 0) / span
        if segment.start_us <= t_last < segment.end_us:
            return segment.label if share >= min_inside else None
        largest = max(largest, share)
    return IDLE if largest <= max_idle_overlap else None


@dataclass(frozen=True)
class DrawnWindows:
    """Samples ``frames`` ``(N, T, 2, out, out)`` uint8 with ``labels`` (class or :data:`IDLE`),
    ``groups`` and ``names`` (where each came from), and per sample its ``events_per_frame``
    (a whole gesture's: its events // T) and ``first_event`` (index in its session)."""

    frames: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    names: tuple[str, ...]
    events_per_frame: np.ndarray
    first_event: np.ndarray


@dataclass(frozen=True)
class _Sample:
    frames: np.ndarray
    label: int
    session: Session
    events_per_frame: int
    first_event: int


class WindowSampler:
    """Draws live windows (and whole-gesture samples) from sessions, reproducibly from a seed."""

    def __init__(self, sessions: Sequence[Session], window: WindowRange, out_size: int | None = None) -> None:
        if not sessions:
            raise ValueError("no sessions to draw windows from")
        sizes = {s.sensor_size for s in sessions}
        if len(sizes) != 1:
            raise ValueError(f"sessions of several sensor sizes: {sorted(sizes)}")
        self.sessions = list(sessions)
        self.window = window
        (size,) = sizes
        self._resize = BinarizedResize(size) if out_size is None else BinarizedResize(size, out_size)
        self._gestures = [(i, seg) for i, s in enumerate(self.sessions) for seg in s.segments]
        if not self._gestures:
            raise ValueError("the sessions hold no labelled gestures")

    def draw(self, count: int, seed: int) -> DrawnWindows:
        """``count`` samples: whole gestures, gesture windows and idle windows in the
        proportions of :class:`WindowRange` (each kind drawn again until one fits), in random order."""
        rng = np.random.default_rng(seed)
        samples: list[_Sample] = []
        for _ in range(count):
            whole = rng.random() < self.window.whole_share
            idle = not whole and rng.random() < self.window.idle_share
            for _attempt in range(MAX_ATTEMPTS):
                sample = self._whole(rng) if whole else self._live(rng, idle)
                if sample is not None:
                    break
            else:
                raise ValueError(f"no {'idle' if idle else 'gesture'} window of the asked sizes fits the sessions")
            samples.append(sample)
        return DrawnWindows(np.stack([s.frames for s in samples]), np.array([s.label for s in samples], dtype=np.int64),
                            np.array([s.session.group for s in samples], dtype=np.int64),
                            tuple(s.session.name for s in samples),
                            np.array([s.events_per_frame for s in samples], dtype=np.int64),
                            np.array([s.first_event for s in samples], dtype=np.int64))

    def _whole(self, rng: np.random.Generator) -> _Sample | None:
        index, segment = self._gestures[int(rng.integers(len(self._gestures)))]
        session = self.sessions[index]
        lo, hi = session.gesture_events(segment)
        if hi - lo < self.window.frames:
            return None
        frames = frames_of(session.pixels[lo:hi], equal_count_bounds(hi - lo, self.window.frames), self._resize)
        return _Sample(frames, segment.label, session, (hi - lo) // self.window.frames, lo)

    def _live(self, rng: np.random.Generator, idle: bool) -> _Sample | None:
        low, high = self.window.events_per_frame
        events_per_frame = int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))
        keep = rng.uniform(*self.window.keep)
        needed = self.window.frames * events_per_frame
        session = self.sessions[int(rng.integers(len(self.sessions)))]
        if idle:
            end = int(rng.integers(needed, len(session) + 1)) if len(session) >= needed else None
        else:
            segment = session.segments[int(rng.integers(len(session.segments)))] if session.segments else None
            if segment is None:
                return None
            lo, hi = session.gesture_events(segment)
            end = int(rng.integers(lo, hi)) + 1 if hi > lo else None
        if end is None:
            return None
        # thin the events before the window's end until it holds ``needed`` of them
        span = int(np.ceil(needed / keep * 1.2)) + 64
        first = max(end - span, 0)
        kept = np.flatnonzero(rng.random(end - first) < keep) + first
        if len(kept) < needed:
            return None
        kept = kept[-needed:]
        label = window_label(int(session.t[kept[0]]), int(session.t[kept[-1]]), session.segments,
                             self.window.min_inside, self.window.max_idle_overlap)
        if label is None or (label == IDLE) != idle:
            return None
        frames = frames_of(session.pixels[kept], sliding_bounds(events_per_frame, self.window.frames), self._resize)
        return _Sample(frames, label, session, events_per_frame, int(kept[0]))


def load_sessions(folder: DvsGestureFolder, split: str) -> list[Session]:
    """The recordings (AEDAT 3.1, or jAER's AEDAT 2.0) of one split of a DVS Gesture folder (IBM
    layout) as sessions of the 128x128 field (a larger sensor's centred square, see
    :mod:`livegesture.geometry`); unreadable ones are left out, in ``folder.skipped``."""
    from livegesture.geometry import FIELD_SIZE, FieldMapping
    from livegesture.sources.dataset import user_of

    return [Session.of(FieldMapping(recording.sensor_size)(recording.events), segments, FIELD_SIZE, user_of(path),
                       path.name)
            for path, segments, recording in folder.recordings(split)]
