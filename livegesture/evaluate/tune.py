"""Tuning the live pipeline's window settings: a grid of streaming evaluations.

Every point of the grid (the product of the values given per setting, on top of the base
settings) is a streaming evaluation over all recordings (:mod:`livegesture.evaluate.streaming`).
Two figures per point: *accuracy* (balanced: the mean of the decisions' accuracy inside
gestures and of the "no gesture" decisions' share between them) and *latency*
(the median time to the first correct decision after a gesture's onset; a point with no
correct decision at all has infinite latency). The Pareto front and the best point are
chosen as :mod:`livegesture.evaluate.grid` documents (a tie in accuracy goes to the point with
fewer false switches); with a budget of false switches per
gesture, the best point is chosen among the points within it only (balanced accuracy does
not see a prediction that flickers between classes it gets right half of the time).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from livegesture.evaluate.grid import TUNED_SETTINGS, Grid, best_point, pareto_front
from livegesture.evaluate.metrics import StreamScore
from livegesture.evaluate.recordings import Inventory, Skipped
from livegesture.evaluate.streaming import RecordingStream, init_stream_worker, run_streams, total_score
from livegesture.pipeline.settings import PipelineSettings


@dataclass(frozen=True)
class TunePoint:
    """One grid point: its changes to the base settings, the settings, the score over all recordings."""

    changes: dict[str, Any]
    settings: PipelineSettings
    score: StreamScore

    @property
    def accuracy(self) -> float:
        """Balanced streaming accuracy: the mean of the decisions inside gestures that are
        right and of those between gestures that say "no gesture" (a policy that never names
        a gesture, or always does, scores 0.5 at best)."""
        inside, between = self.score.frame_accuracy, self.score.idle_rejection
        parts = [part for part in (inside, between) if part is not None]
        return sum(parts) / len(parts) if parts else 0.0

    @property
    def latency_s(self) -> float:
        latency = self.score.median_latency_s
        return math.inf if latency is None else latency

    @property
    def switches_per_gesture(self) -> float:
        """False switches per gesture (0 without gestures: nothing flickered)."""
        return self.score.switches_per_gesture or 0.0


@dataclass(frozen=True)
class TuneResult:
    """The evaluated grid points (complete ones only), the front and the best point."""

    source: str
    base: PipelineSettings
    grid: Grid
    points: tuple[TunePoint, ...]
    recordings: tuple[RecordingStream, ...]
    skipped: tuple[Skipped, ...]
    not_run: int
    seconds: float
    max_false_switches: float | None = None
    """The budget of false switches per gesture of the best point (None: no budget)."""

    @property
    def front(self) -> list[int]:
        return pareto_front([(p.accuracy, p.latency_s) for p in self.points])

    @property
    def eligible(self) -> list[int]:
        """The points within the false-switch budget (all of them without one)."""
        budget = self.max_false_switches
        return [i for i, p in enumerate(self.points) if budget is None or p.switches_per_gesture <= budget]

    @property
    def best(self) -> int | None:
        """The best of the eligible points (:func:`~livegesture.evaluate.grid.best_point`: a tie in
        accuracy goes to fewer false switches; None if none is eligible)."""
        eligible = self.eligible
        if not eligible:
            return None
        chosen = [self.points[i] for i in eligible]
        return eligible[best_point([(p.accuracy, p.latency_s) for p in chosen], [p.switches_per_gesture for p in chosen])]

    def to_dict(self) -> dict[str, Any]:
        front, best = self.front, self.best
        return {
            "mode": "tune", "source": self.source, "base_settings": asdict(self.base),
            "grid": {name: list(values) for name, values in self.grid.axes},
            "points": [{"changes": p.changes, **p.score.summary(), "pareto": i in front, "best": i == best}
                       for i, p in enumerate(self.points)],
            "best": None if best is None else self.points[best].changes,
            "max_false_switches": self.max_false_switches,
            "recordings": [r.row() for r in self.recordings], "skipped": [s.to_dict() for s in self.skipped],
            "not_run": self.not_run, "interrupted": self.not_run > 0, "seconds": self.seconds,
        }


def tune(inventory: Inventory, base: PipelineSettings, grid: Grid, *, workers: int = 1,
         progress: Any = None, timeout_s: float | None = None, max_false_switches: float | None = None) -> TuneResult:
    """Evaluate every grid point on every recording (see the module docstring); a run longer
    than ``timeout_s`` is stopped and its recording reported as skipped; the best point has at
    most ``max_false_switches`` per gesture.

    Points are validated before anything runs (a bad value is a ``SettingsError`` naming
    the setting). After Ctrl-C only the points whose recordings all finished are kept.
    """
    unknown = sorted(set(grid.names) - set(TUNED_SETTINGS))
    if unknown:
        raise ValueError(f"cannot tune {', '.join(unknown)}; tunable: {', '.join(TUNED_SETTINGS)}")
    changes = grid.changes()
    settings = [base.replace(**change) for change in changes]
    started = time.perf_counter()
    results, not_run = run_streams(inventory, Path(base.model), settings, workers=workers, progress=progress,
                                   timeout_s=timeout_s)
    num_classes = init_stream_worker(Path(base.model)).network.num_outputs
    points = []
    for number, (change, setting) in enumerate(zip(changes, settings)):
        mine = [r for r in results if r.point == number]
        if len(mine) == len(inventory.recordings):
            points.append(TunePoint(change, setting, total_score(mine, num_classes)))
    skipped = [*inventory.skipped, *dict.fromkeys(s for r in results for s in r.skipped)]  # same at every point
    return TuneResult(inventory.source, base, grid, tuple(points), tuple(results), tuple(skipped), not_run,
                      time.perf_counter() - started, max_false_switches)
