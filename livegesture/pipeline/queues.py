"""The bounded queue between two pipeline threads, with its drop policy."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """The pipeline is stopping: the queue no longer takes or gives items."""


class StageQueue(Generic[T]):
    """A FIFO of at most ``capacity`` items between a producer and a consumer thread.

    Drop policy, chosen per ``put``: live (``block=False``) a full queue drops its OLDEST
    item to make room and returns it, so the consumer always gets the freshest data and
    never falls behind by more than ``capacity`` items; lossless (``block=True``) the
    producer waits for room, so nothing is lost and memory stays bounded. ``close()`` wakes
    every waiting thread: both ends then raise :class:`QueueClosed`.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def put(self, item: T, *, block: bool) -> T | None:
        """Append ``item``; the oldest item dropped to make room (live), else None."""
        with self._cond:
            while block and len(self._items) >= self.capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                raise QueueClosed
            dropped = self._items.popleft() if len(self._items) >= self.capacity else None
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float) -> T | None:
        """The oldest item, waiting at most ``timeout`` seconds; None if there was none."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._closed:
                raise QueueClosed
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()
