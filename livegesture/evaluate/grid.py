"""The tuning grid and the choice of the best point: plain data, cheap to import (the
command line reads the defaults).

A point is on the **Pareto front** when no other point is at least as accurate and at least
as fast, and strictly better in one. The **best** point is the most accurate one, where
accuracies within :data:`ACCURACY_TIE` of the highest count as a tie: of the tied points, the
one with the fewest false switches per gesture (when they are given), then the fastest, then
the most accurate. So the best point is on the front whenever the tied points' false switches
are equal (or not given).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ACCURACY_TIE = 0.001
"""Balanced accuracies closer than this (a tenth of a point) are a tie in the choice of the best
point: far inside the noise of any validation set here (about 2,000 decisions, whose standard
error is near a point), while the false switches that break the tie are what a user sees."""
TUNED_SETTINGS = ("events_per_frame", "frames_per_window", "clear_every", "mode", "smoothing", "min_confidence",
                  "min_output_spikes", "switch_margin", "noise_filter", "min_event_rate")
"""The settings a grid may vary (the decision policy's cost nothing more: the network runs
once per window setting, the quiet-scene gate ``min_event_rate`` included, which acts in the
engine, and the policies replay its counts)."""
DEFAULT_GRID: dict[str, tuple[Any, ...]] = {
    "events_per_frame": (500, 800, 1_200),
    "mode": ("periodic", "staggered"),
    "smoothing": (1, 2),
    "min_output_spikes": (4, 8),
}
"""The default grid (24 points, 6 runs of the network: the policy settings replay its counts),
around the shipped model's trained window (400-1,600 events per frame, windows of 10 frames).
``clear_every`` and ``frames_per_window`` are left out: a model is trained for one window length,
and ``frames_per_window`` only sets how many frames are kept for display."""
GRID_PREFIX = "grid_"
"""Destination prefix of ``tune``'s grid options (lists of values, not single settings)."""
SWITCH_VALUES = {"off": False, "on": True}
"""How a grid of a boolean setting is written on the command line."""


@dataclass(frozen=True)
class Grid:
    """Values to try per setting; every combination is a point."""

    axes: tuple[tuple[str, tuple[Any, ...]], ...]

    @classmethod
    def of(cls, values: dict[str, Sequence[Any]]) -> Grid:
        return cls(tuple((name, tuple(options)) for name, options in values.items() if options))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    def changes(self) -> list[dict[str, Any]]:
        """Each point's settings, as changes to the base settings."""
        return [dict(zip(self.names, combination)) for combination in itertools.product(*(v for _, v in self.axes))]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (accuracy, latency) points that no other point dominates (higher
    accuracy is better, lower latency is better)."""
    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and a != b

    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def best_point(points: Sequence[tuple[float, float]], switches: Sequence[float] | None = None) -> int:
    """The best of the (accuracy, latency) points, ``switches`` their false switches per gesture
    (see the module docstring)."""
    if not points:
        raise ValueError("no points to choose from")
    top = max(accuracy for accuracy, _ in points)
    tied = [i for i, (accuracy, _) in enumerate(points) if accuracy >= top - ACCURACY_TIE]
    return min(tied, key=lambda i: (0.0 if switches is None else switches[i], points[i][1], -points[i][0]))
