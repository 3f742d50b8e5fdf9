"""Recent decisions and the true labels as timeline runs: pure, no Qt.

Times are event times in microseconds (the ``t_us`` of the decisions and the labels'
``start_us`` / ``end_us``), so a paused or fast replay shows the recording's own time.
A label of None is "no gesture", as in a :class:`~livegesture.pipeline.decision.Decision`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from livegesture.sources.labels import GestureSegment

TIMELINE_SPAN_US = 20_000_000
"""Event time the timeline shows, ending at the latest event."""
MAX_TIMELINE_DECISIONS = 4_096
"""Bound on the decisions kept for the timeline, whatever their rate."""


@dataclass(frozen=True)
class Run:
    """A stretch of time with one label (None: no gesture): ``start_us <= t < end_us``."""

    start_us: int
    end_us: int
    label: int | None


def decision_runs(times_us: Sequence[int], labels: Sequence[int | None], end_us: int) -> list[Run]:
    """Each decision's label holds from its time to the next decision (the last one to
    ``end_us``); consecutive equal labels merge into one run. Empty stretches are dropped."""
    runs: list[Run] = []
    bounds = [*times_us[1:], end_us]
    for start, end, label in zip(times_us, bounds, labels):
        if end <= start:
            continue
        if runs and runs[-1].label == label and runs[-1].end_us == start:
            runs[-1] = Run(runs[-1].start_us, end, label)
        else:
            runs.append(Run(start, end, label))
    return runs


def truth_runs(segments: Sequence[GestureSegment], start_us: int, end_us: int) -> list[Run]:
    """The labelled gestures that overlap ``[start_us, end_us)``, clipped to it."""
    return [Run(max(s.start_us, start_us), min(s.end_us, end_us), s.label)
            for s in segments if s.start_us < end_us and s.end_us > start_us]


def timeline_span(first_us: int, now_us: int, span_us: int) -> tuple[int, int]:
    """The stretch of event time the timeline shows: ``span_us`` ending at ``now_us``, but
    starting no earlier than the first event (the strip fills from the left, then scrolls)."""
    start = max(first_us, now_us - span_us)
    return start, start + span_us


class DecisionTimeline:
    """The decisions of the last ``span_us`` of event time (at most ``max_decisions``)."""

    def __init__(self, span_us: int = TIMELINE_SPAN_US, max_decisions: int = MAX_TIMELINE_DECISIONS) -> None:
        self.span_us = span_us
        self._decisions: deque[tuple[int, int | None]] = deque(maxlen=max_decisions)

    def __len__(self) -> int:
        return len(self._decisions)

    def add(self, t_us: int, label: int | None) -> None:
        """Append one decision (label None = no gesture); decisions come in time order."""
        self._decisions.append((t_us, label))

    def clear(self) -> None:
        self._decisions.clear()

    def runs(self, now_us: int) -> list[Run]:
        """Runs of the decisions in ``[now_us - span_us, now_us)``, the first one clipped to
        the window's start (it began with the last decision before the window)."""
        start = now_us - self.span_us
        while len(self._decisions) > 1 and self._decisions[1][0] <= start:
            self._decisions.popleft()
        if not self._decisions:
            return []
        times, labels = zip(*self._decisions)
        runs = decision_runs(times, labels, now_us)
        return [Run(max(run.start_us, start), run.end_us, run.label) for run in runs if run.end_us > start]
