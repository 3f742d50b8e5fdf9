"""Recording what the source sees to aedat4, with gesture labels marked as it runs.

The events go to ``<name>.aedat4`` (:class:`~livegesture.sources.aedat4.Aedat4Writer`);
the gestures marked with :meth:`Recorder.begin` / :meth:`Recorder.end` go to
``<name>_labels.csv`` in the DVS Gesture format (1-based classes, microsecond start and
end) when the recorder is closed, so the pair opens again with ``open_source`` as a
labelled recording. Thread-safe: a source thread writes while a GUI thread marks labels.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from livegesture.events import LivegestureError, SensorSize
from livegesture.sources.aedat4 import Aedat4Writer
from livegesture.sources.labels import NUM_CLASSES, GestureSegment, labels_path_for, write_labels


class Recorder:
    """Writes event batches to an aedat4 file and collects labelled gestures.

    Label times are event times; by default a mark takes the time of the latest event
    written, which is "now" for a live camera. A gesture that would be empty (it ends
    where it starts) is not kept: DVS Gesture label files have ``end > start``.
    """

    def __init__(self, path: str | Path, sensor_size: SensorSize) -> None:
        self.path = Path(path)
        self.labels_path = labels_path_for(self.path)
        self._lock = threading.Lock()
        self._writer: Aedat4Writer | None = Aedat4Writer(self.path, sensor_size)
        self._segments: list[GestureSegment] = []
        self._running: tuple[int, int] | None = None
        """(label, start_us) of the gesture being marked."""
        self._last_t: int | None = None
        self._written = 0
        """The count of a closed recording."""

    @property
    def events_written(self) -> int:
        """Events written so far (all of them once closed)."""
        with self._lock:
            return self._writer.events_written if self._writer is not None else self._written

    @property
    def segments(self) -> list[GestureSegment]:
        """The gestures marked and ended so far."""
        with self._lock:
            return list(self._segments)

    @property
    def running_label(self) -> int | None:
        """The class (0-based) of the gesture being marked, or None."""
        with self._lock:
            return self._running[0] if self._running else None

    @property
    def closed(self) -> bool:
        return self._writer is None

    def write(self, events: np.ndarray) -> None:
        """Append one validated, time-ordered batch (ignored once closed)."""
        with self._lock:
            if self._writer is None:
                return
            self._writer.write(events)
            if events.size:
                self._last_t = int(events["t"][-1])

    def begin(self, label: int, t_us: int | None = None) -> None:
        """Start marking gesture ``label`` (0-based) at ``t_us`` (default: the latest event);
        a gesture being marked ends there."""
        if not 0 <= label < NUM_CLASSES:
            raise LivegestureError(f"gesture class must be 1..{NUM_CLASSES}, got {label + 1}")
        with self._lock:
            t_us = self._now(t_us)
            self._end(t_us)
            self._running = (label, t_us)

    def end(self, t_us: int | None = None) -> None:
        """End the gesture being marked at ``t_us`` (default: the latest event); nothing if none."""
        with self._lock:
            self._end(self._now(t_us))

    def close(self) -> None:
        """End a running gesture at the latest event, finalise the aedat4 file and write the
        label file; idempotent."""
        with self._lock:
            if self._writer is None:
                return
            self._end(self._now(None))
            self._writer.close()
            self._written, self._writer = self._writer.events_written, None
            try:
                write_labels(self.labels_path, self._segments)
            except OSError as err:
                raise LivegestureError(f"{self.labels_path}: cannot write the label file "
                                       f"({err.strerror or err})") from None

    def _now(self, t_us: int | None) -> int:
        """``t_us``, or the time of the latest event written (0 before any)."""
        if t_us is not None:
            return int(t_us)
        return self._last_t if self._last_t is not None else 0

    def _end(self, t_us: int) -> None:
        if self._running is None:
            return
        label, start = self._running
        self._running = None
        if t_us > start:
            self._segments.append(GestureSegment(label, start, t_us))

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
