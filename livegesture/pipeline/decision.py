"""Output spike counts of a window -> a running, smoothed prediction that does not flicker."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from livegesture.pipeline.settings import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_OUTPUT_SPIKES,
    DEFAULT_SMOOTHING,
    DEFAULT_SWITCH_MARGIN,
    PipelineSettings,
)


@dataclass(frozen=True)
class Decision:
    """The running prediction after one window."""

    label: int | None
    """Predicted class (0-based), or None: uncertain / no gesture."""
    confidence: float
    """Smoothed score of ``label`` (of the top class when ``label`` is None)."""
    scores: np.ndarray
    """Smoothed per-class scores: sum 1, or all 0 when the recent windows were silent."""
    counts: np.ndarray
    """Raw output spike counts of this window (int64 per class)."""
    t_us: int
    """Timestamp of the event that completed the window's last frame."""
    frame_index: int
    """Index of the window's last frame."""
    quiet: bool = False
    """The scene fell quiet (see :class:`~livegesture.pipeline.engine.PredictionEngine`): the
    decision says "no gesture" whatever the counts."""
    window: bool = True
    """False for a decision made between windows, when the scene fell quiet (no counts)."""


def window_scores(counts: np.ndarray, min_output_spikes: int) -> np.ndarray:
    """One window's vote: its counts normalised to sum 1, all 0 below ``min_output_spikes``
    (or with no spikes at all)."""
    total = int(counts.sum())
    if total == 0 or total < min_output_spikes:
        return np.zeros(len(counts))
    return counts / total


class RunningPrediction:
    """Turns each window's output spike counts into a :class:`Decision`. Pure: no threads, no clock.

    Scores: each window votes with its counts normalised to sum 1 (a window with fewer than
    ``min_output_spikes`` spikes votes all zeros); the scores are the mean of the last
    ``smoothing`` votes, renormalised to sum 1 (all 0 if every vote was silent).

    Label: None ("no gesture") when this window had fewer than ``min_output_spikes`` output
    spikes, so a still scene says so at once whatever came before. Otherwise hysteresis: the
    class shown stays while its score is at least ``min_confidence - switch_margin`` and no
    class leads it by ``switch_margin`` or more; else the top class is shown if its score
    reaches ``min_confidence``, and None if not. A near tie or a score hovering at the
    threshold therefore does not flip the label every window.
    """

    def __init__(self, num_classes: int, smoothing: int = DEFAULT_SMOOTHING,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 min_output_spikes: int = DEFAULT_MIN_OUTPUT_SPIKES,
                 switch_margin: float = DEFAULT_SWITCH_MARGIN) -> None:
        if num_classes < 1 or smoothing < 1:
            raise ValueError(f"num_classes and smoothing must be at least 1, got {num_classes}, {smoothing}")
        self.num_classes = num_classes
        self.min_confidence = min_confidence
        self.min_output_spikes = min_output_spikes
        self.switch_margin = switch_margin
        self._votes: deque[np.ndarray] = deque(maxlen=smoothing)
        self._label: int | None = None

    @classmethod
    def of(cls, num_classes: int, settings: PipelineSettings) -> RunningPrediction:
        """The running prediction under ``settings``' decision policy."""
        return cls(num_classes, settings.smoothing, settings.min_confidence, settings.min_output_spikes,
                   settings.switch_margin)

    @property
    def label(self) -> int | None:
        """The class shown now (None: no gesture)."""
        return self._label

    def reset(self) -> None:
        """Forget the recent windows and the class shown."""
        self._votes.clear()
        self._label = None

    def update(self, counts: np.ndarray, t_us: int, frame_index: int, quiet: bool = False) -> Decision:
        """Take one window's output spike counts; the decision after it. A ``quiet`` window
        votes silence and decides "no gesture"."""
        counts = np.asarray(counts, dtype=np.int64).copy()
        if counts.shape != (self.num_classes,):
            raise ValueError(f"expected {self.num_classes} counts, got shape {counts.shape}")
        self._votes.append(np.zeros(self.num_classes) if quiet else window_scores(counts, self.min_output_spikes))
        total = np.sum(self._votes, axis=0)
        scores = total / total.sum() if total.any() else total
        active = counts.sum() >= max(self.min_output_spikes, 1) and not quiet
        self._label = self._choose(scores) if active else None
        confidence = scores[self._label] if self._label is not None else scores.max()
        return Decision(self._label, float(confidence), scores, counts, int(t_us), int(frame_index), quiet)

    def fall_quiet(self, t_us: int, frame_index: int) -> Decision:
        """The scene fell quiet between windows: "no gesture" now, and the recent windows forgotten."""
        self.reset()
        zeros = np.zeros(self.num_classes)
        return Decision(None, 0.0, zeros, zeros.astype(np.int64), int(t_us), int(frame_index), quiet=True,
                        window=False)

    def replay(self, decision: Decision) -> Decision:
        """``decision`` (made under any policy) as this policy makes it from the same window."""
        if not decision.window:
            return self.fall_quiet(decision.t_us, decision.frame_index)
        return self.update(decision.counts, decision.t_us, decision.frame_index, decision.quiet)

    def _choose(self, scores: np.ndarray) -> int | None:
        top = int(np.argmax(scores))
        shown = self._label
        if (shown is not None and scores[shown] >= self.min_confidence - self.switch_margin
                and scores[top] - scores[shown] < self.switch_margin):
            return shown
        return top if scores[top] >= self.min_confidence else None
