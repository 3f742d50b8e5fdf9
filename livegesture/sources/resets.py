"""Timestamp resets inside a recording (a camera restarted mid-recording): found, named, handled.

A reset is a place where the timestamps go backwards; it splits the recording into parts, each
in its own time base. ``on_reset`` says what a reader does with them:

- ``error`` (default): refuse the recording, naming the first reset and how many there are;
- ``rebase``: shift every part so that it starts at the last timestamp of the part before (one
  continuous recording, no time lost or added);
- ``split``: shift every part so that it starts :data:`SPLIT_GAP_US` after the end of the part
  before: the parts stay apart in time (a replay pauses between them, a window of frames
  rarely spans two parts) and :attr:`TimestampReset.index` tells where each part begins.

Labels of such a recording (``_labels.csv``) are in the parts' own time bases, written in order:
a row that starts earlier than the row before it begins the next part.
:func:`shift_labels` moves each row by its part's shift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from livegesture.events import EventFormatError
from livegesture.sources.labels import GestureSegment

OnReset = Literal["error", "split", "rebase"]
ON_RESET_CHOICES: tuple[str, ...] = ("error", "split", "rebase")
SPLIT_GAP_US = 1_000_000
"""Time put between two parts by ``split``: longer than any decision window."""


@dataclass(frozen=True)
class TimestampReset:
    """One reset: the event ``index`` where a part begins, the timestamps before and at it (as
    recorded), and the ``shift_us`` added to that part's timestamps."""

    index: int
    before_us: int
    after_us: int
    shift_us: int

    def describe(self) -> str:
        return f"event {self.index:,}: {self.before_us:,} us -> {self.after_us:,} us"


class ResetHandler:
    """Handles the resets of one stream, batch by batch (a reset may fall between two batches):
    each call returns the batch as ``on_reset`` says; ``resets`` lists those found so far.
    ``error`` raises :class:`EventFormatError` naming ``source`` and the first reset."""

    def __init__(self, on_reset: OnReset, source: object) -> None:
        if on_reset not in ON_RESET_CHOICES:
            raise ValueError(f"on_reset must be one of {', '.join(ON_RESET_CHOICES)}, got {on_reset!r}")
        self.on_reset = on_reset
        self.source = source
        self.resets: list[TimestampReset] = []
        self._events_seen = 0
        self._last_t: int | None = None  # as recorded, before any shift
        self._shift = 0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if not len(events):
            return events
        t = events["t"]
        places = np.flatnonzero(t[1:] < t[:-1]) + 1
        if self._last_t is not None and t[0] < self._last_t:
            places = np.concatenate(([0], places))
        if not len(places):
            out = events if not self._shift else events.copy()
            if self._shift:
                out["t"] += self._shift
        else:
            self._check(events, places)
            out = events.copy()
            starts = places.tolist()
            reset_at = set(starts)
            bounds = [*([0] if starts[0] else []), *starts, len(events)]
            for start, end in zip(bounds[:-1], bounds[1:]):
                if start in reset_at:
                    before = self._last_t if start == 0 else int(t[start - 1])
                    after = int(t[start])
                    self._shift += before - after + (SPLIT_GAP_US if self.on_reset == "split" else 0)
                    self.resets.append(TimestampReset(self._events_seen + start, before, after, self._shift))
                out["t"][start:end] += self._shift
        self._events_seen += len(events)
        self._last_t = int(t[-1])
        return out

    def _check(self, events: np.ndarray, places: np.ndarray) -> None:
        if self.on_reset != "error" or not len(places):
            return
        first = int(places[0])
        before = self._last_t if first == 0 else int(events["t"][first - 1])
        places_text = f"{len(places)} such place{'s' * (len(places) != 1)}"
        raise EventFormatError(
            self.source, f"timestamp reset at event {self._events_seen + first:,}: time goes from {before:,} us "
                         f"back to {int(events['t'][first]):,} us ({places_text} in the events read; a camera "
                         f"restarted?); --on-reset rebase or split reads it")


def resolve_resets(events: np.ndarray, on_reset: OnReset,
                   source: object) -> tuple[np.ndarray, tuple[TimestampReset, ...]]:
    """All ``events`` of a recording with their resets handled (:class:`ResetHandler`), and the resets."""
    handler = ResetHandler(on_reset, source)
    return handler(events), tuple(handler.resets)


def label_parts(segments: list[GestureSegment]) -> list[int]:
    """The part each label row belongs to: a row that starts before the row above begins the next part."""
    parts, part = [], 0
    for row, segment in enumerate(segments):
        if row and segment.start_us < segments[row - 1].start_us:
            part += 1
        parts.append(part)
    return parts


def shift_labels(segments: list[GestureSegment], resets: tuple[TimestampReset, ...],
                 parts: list[int] | None = None) -> list[GestureSegment]:
    """Labels moved as the events were: row ``k`` by the shift of its part (``parts[k]``, by
    default :func:`label_parts`); rows past the last part found keep its shift."""
    if not resets:
        return list(segments)
    shifts = [0, *(reset.shift_us for reset in resets)]
    parts = label_parts(segments) if parts is None else parts
    return [replace(segment, start_us=segment.start_us + shift, end_us=segment.end_us + shift)
            for segment, part in zip(segments, parts) for shift in [shifts[min(part, len(resets))]]]
