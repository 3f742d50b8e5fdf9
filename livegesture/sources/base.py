"""The small interface every event source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from livegesture.events import SensorSize
from livegesture.sources.labels import GestureSegment, labels_path_for, read_labels
from livegesture.sources.resets import TimestampReset, shift_labels


class EventSource(ABC):
    """An iterable of event batches (arrays of ``EVENT_DTYPE``) from one recording or device.

    ``name`` identifies the source in messages (a file path, a camera serial);
    ``sensor_size`` is ``(width, height)``; ``labels`` holds the gesture segments
    of a labelled recording, or ``None``; ``live`` is true for a device, whose
    batches arrive in real time (recordings are paced by a replay instead).
    Batches are validated and time-ordered.
    """

    name: str
    sensor_size: SensorSize
    labels: list[GestureSegment] | None = None
    live: bool = False

    @abstractmethod
    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield event batches until the source is exhausted or closed."""

    def close(self) -> None:
        """Release files or devices; safe to call more than once."""

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InMemoryRecording(EventSource):
    """A recording file read whole when opened: its validated ``events`` (after the timestamp
    ``resets`` were handled), iterated in batches of at most ``batch_events`` events, from the
    start each time; ``labels`` from the sidecar ``*_labels.csv`` when there is one, moved as
    the events were (:func:`~livegesture.sources.resets.shift_labels`)."""

    def __init__(self, path: str | Path, events: np.ndarray, sensor_size: SensorSize,
                 resets: tuple[TimestampReset, ...], batch_events: int) -> None:
        if batch_events < 1:
            raise ValueError(f"batch_events must be at least 1, got {batch_events}")
        self.path = Path(path)
        self.name = str(self.path)
        self.sensor_size = sensor_size
        self.resets = resets
        labels_path = labels_path_for(self.path)
        self.labels = shift_labels(read_labels(labels_path), resets) if labels_path.exists() else None
        self.batch_events = batch_events
        self._events: np.ndarray | None = events

    def __iter__(self) -> Iterator[np.ndarray]:
        events = self.events
        for lo in range(0, len(events), self.batch_events):
            yield events[lo:lo + self.batch_events]

    @property
    def events(self) -> np.ndarray:
        """All events of the recording."""
        if self._events is None:
            raise ValueError(f"{self.name}: recording is closed")
        return self._events

    def close(self) -> None:
        self._events = None
