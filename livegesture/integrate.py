"""Events -> binarized 2-channel frames, exactly as the deployed nets were trained.

The reference transform (SpikingJelly ``integrate_events_by_fixed_frames_number``
with ``split_by="number"``, then ``F.interpolate(mode="bilinear",
align_corners=False)`` to 63x63, then ``> 0``) is reproduced here in numpy,
bit for bit, with no torch in the hot path:

* channel 0 holds OFF events (p = 0), channel 1 ON events (p = 1);
* every output pixel of a bilinear resize is a non-negative weighted sum of at most
  2x2 input pixels, so "resized > 0" is the OR of those input pixels that carry a
  non-zero weight. :class:`BinarizedResize` computes, once, the same source indices
  and weights as PyTorch's CPU kernel (float32 arithmetic) and then resizes a frame
  with two gathers.

Written by hand because no library does this: dv-processing's
``EventStreamSlicer`` slices only ``EventStore``s (numpy -> EventStore costs a
``push_back`` per event, far below the rates needed here) and its accumulators do
not reproduce the training transform.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from livegesture.events import SensorSize

NET_INPUT_SIZE = 63
"""Side of the square frames the network sees."""

DEFAULT_EVENTS_PER_FRAME = 2_000
"""Events per frame of the sliding integrator: about a tenth of a gesture's events."""
TIMESTEPS = 10
"""Frames per sample in the reference deployment (SpikingJelly ``frames_number=10``)."""
DEFAULT_FRAMES_PER_WINDOW = TIMESTEPS
"""Frames per window, as the reference's 10 frames per sample."""
MAX_EVENTS_PER_FRAME = 10_000_000
"""Most events per frame a setting or a model's live window may ask for. A frame of 10 M events
is 11 s of a DAVIS346 at 905 k events/s, 8 minutes of a DVS128 scene at 21 k events/s: beyond
that one frame blurs many gestures, and its events take 130 MB."""
MAX_FRAMES = 1_000
"""Frames per window, per clear or per training sample (a model's ``timesteps``): the net was
trained on 10; 1,000 binarized 2 x 63 x 63 frames kept for display are 8 MB."""

CHANNELS = 2
OFF, ON = 0, 1
"""Channel index of each polarity (channel = p)."""
INPUT_SHAPE: tuple[int, int, int] = (CHANNELS, NET_INPUT_SIZE, NET_INPUT_SIZE)
"""Network input: one axon per (channel, y, x) of a binarized frame."""


def _source_indices(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source pixels with non-zero weight for each output pixel of one axis.

    Mirrors PyTorch's ``compute_source_index_and_lambda`` (UpSampleKernel.cpp) for
    ``align_corners=False`` in float32: ``src = scale * (dst + 0.5) - 0.5`` clamped
    at 0, ``i0 = floor(src)`` clamped to ``in_size - 1``, ``i1 = i0 + 1`` unless at
    the border, ``lambda1 = src - i0``. Where ``lambda1 == 0`` pixel ``i1`` has no
    weight, so ``i1 = i0`` is returned instead.
    """
    if in_size == out_size:
        same = np.arange(out_size)
        return same, same
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    # PyTorch's build contracts ``scale * (dst + 0.5) - 0.5`` into one fused
    # multiply-add: the product is exact and only the result is rounded to float32.
    # float64 holds that product exactly, so this rounds once, like the FMA.
    dst = np.arange(out_size, dtype=np.float64)
    src = np.maximum((np.float64(scale) * (dst + 0.5) - 0.5).astype(f32), f32(0))
    i0 = np.minimum(np.floor(src).astype(np.intp), in_size - 1)
    lambda1 = np.clip(src - i0.astype(f32), f32(0), f32(1))
    i1 = np.where((i0 < in_size - 1) & (lambda1 > 0), i0 + 1, i0)
    return i0, i1


@dataclass(frozen=True)
class BinarizedResize:
    """``F.interpolate(frame, (out, out), mode="bilinear", align_corners=False) > 0`` in numpy."""

    sensor_size: SensorSize
    out_size: int = NET_INPUT_SIZE
    _rows: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)
    _cols: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        width, height = self.sensor_size
        object.__setattr__(self, "_rows", _source_indices(height, self.out_size))
        object.__setattr__(self, "_cols", _source_indices(width, self.out_size))

    def __call__(self, occupied: np.ndarray) -> np.ndarray:
        """Resize boolean ``(..., H, W)`` occupancy to ``(..., out, out)`` uint8 zeros and ones."""
        r0, r1 = self._rows
        c0, c1 = self._cols
        rows = occupied[..., r0, :] | occupied[..., r1, :]
        return (rows[..., c0] | rows[..., c1]).view(np.uint8)


def flat_pixels(events: np.ndarray, sensor_size: SensorSize) -> np.ndarray:
    """Each event's index ``p * H * W + y * W + x`` into a flattened ``(2, H, W)`` frame."""
    width, height = sensor_size
    index = events["y"].astype(np.intp)
    index *= width
    index += events["x"]
    index += events["p"].astype(np.intp) * (height * width)
    return index


def _mark(occupied: np.ndarray, events: np.ndarray) -> None:
    """Set ``occupied[p, y, x]`` for every event (flat index: faster than 3-array indexing)."""
    _, height, width = occupied.shape
    occupied.reshape(-1)[flat_pixels(events, (width, height))] = True


def occupancy(events: np.ndarray, sensor_size: SensorSize) -> np.ndarray:
    """Boolean ``(2, H, W)`` map of the pixels that received at least one event, per polarity."""
    width, height = sensor_size
    occupied = np.zeros((CHANNELS, height, width), dtype=bool)
    _mark(occupied, events)
    return occupied


def equal_count_bounds(n_events: int, frames: int) -> np.ndarray:
    """Start and end index of each frame, as SpikingJelly's ``split_by="number"``.

    ``di = N // frames``; frame ``i`` covers ``[i * di, (i + 1) * di)``, the last one
    runs to ``N``. Returns an array of shape ``(frames, 2)``.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    di = n_events // frames
    starts = np.arange(frames) * di
    ends = starts + di
    ends[-1] = n_events
    return np.stack([starts, ends], axis=1)


def integrate_sample(events: np.ndarray, frames: int, sensor_size: SensorSize,
                     out_size: int = NET_INPUT_SIZE) -> np.ndarray:
    """The reference transform of one sample: ``(frames, 2, out, out)`` uint8 zeros and ones."""
    resize = BinarizedResize(sensor_size, out_size)
    return np.stack([resize(occupancy(events[lo:hi], sensor_size))
                     for lo, hi in equal_count_bounds(len(events), frames)])


@dataclass(frozen=True)
class Frame:
    """One binarized network input frame and where it came from in the stream."""

    index: int
    """Frame number since the integrator started (or was reset)."""
    data: np.ndarray
    """``(2, out, out)`` uint8 zeros and ones; channel 0 OFF, channel 1 ON."""
    t_first_us: int
    """Timestamp of the frame's first event."""
    t_last_us: int
    """Timestamp of the event that completed the frame."""


class SlidingIntegrator:
    """Streaming equal-count integration: a frame every ``events_per_frame`` events.

    Feed batches of any size with :meth:`push`; it returns the frames they completed.
    Frame ``k`` covers events ``[k * events_per_frame, (k + 1) * events_per_frame)``
    of the stream, so the last ``frames_per_window`` frames equal
    :func:`integrate_sample` on the same events with ``frames = frames_per_window``.
    Memory is constant: one occupancy map and the window.
    """

    def __init__(self, sensor_size: SensorSize, events_per_frame: int,
                 frames_per_window: int = 10, out_size: int = NET_INPUT_SIZE) -> None:
        if events_per_frame < 1:
            raise ValueError(f"events_per_frame must be >= 1, got {events_per_frame}")
        if frames_per_window < 1:
            raise ValueError(f"frames_per_window must be >= 1, got {frames_per_window}")
        self.sensor_size = sensor_size
        self.events_per_frame = events_per_frame
        self.frames_per_window = frames_per_window
        self._resize = BinarizedResize(sensor_size, out_size)
        width, height = sensor_size
        self._occupied = np.zeros((CHANNELS, height, width), dtype=bool)
        self._window: deque[Frame] = deque(maxlen=frames_per_window)
        self._filled = 0
        self._t_first = 0
        self._next_index = 0

    @property
    def pending_events(self) -> int:
        """Events received towards the next, incomplete frame."""
        return self._filled

    @property
    def window(self) -> list[Frame]:
        """The most recent completed frames, oldest first (at most ``frames_per_window``)."""
        return list(self._window)

    def window_array(self) -> np.ndarray:
        """The window as ``(frames, 2, out, out)`` uint8."""
        return np.stack([frame.data for frame in self._window])

    def reset(self) -> None:
        """Forget the partial frame and the window."""
        self._occupied[:] = False
        self._window.clear()
        self._filled = 0
        self._next_index = 0

    def push(self, events: np.ndarray) -> list[Frame]:
        """Integrate a batch of validated events; return the frames it completed, in order."""
        completed: list[Frame] = []
        n = len(events)
        start = 0
        while start < n:
            take = min(n - start, self.events_per_frame - self._filled)
            chunk = events[start:start + take]
            if self._filled == 0:
                self._t_first = int(chunk["t"][0])
            _mark(self._occupied, chunk)
            self._filled += take
            start += take
            if self._filled == self.events_per_frame:
                completed.append(self._emit(int(chunk["t"][-1])))
        return completed

    def _emit(self, t_last: int) -> Frame:
        frame = Frame(self._next_index, self._resize(self._occupied), self._t_first, t_last)
        self._window.append(frame)
        self._next_index += 1
        self._occupied[:] = False
        self._filled = 0
        return frame
