"""The events handed over since the last look, kept for the display: bounded, newest kept."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from livegesture.events import empty_events

OVERLAY_EVENTS = 100_000
"""Most recent events kept between two looks (older ones are forgotten)."""


class RecentEvents:
    """Batches added by one thread, taken by another. Holds whole batches: at least the last
    ``max_events`` events when that many came (a batch is never split), so memory stays flat
    however long nobody looks."""

    def __init__(self, max_events: int = OVERLAY_EVENTS) -> None:
        self.max_events = max_events
        self._lock = threading.Lock()
        self._batches: deque[np.ndarray] = deque()
        self._size = 0

    def add(self, batch: np.ndarray) -> None:
        with self._lock:
            self._batches.append(batch)
            self._size += len(batch)
            while self._size - len(self._batches[0]) >= self.max_events:
                self._size -= len(self._batches.popleft())

    def take(self) -> np.ndarray:
        """The events kept, oldest first, and forget them."""
        with self._lock:
            batches, self._batches, self._size = self._batches, deque(), 0
        return np.concatenate(batches) if batches else empty_events()
