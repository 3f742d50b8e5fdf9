"""What the window writes: status figures, prediction and accuracy lines, label keys. No Qt."""

from __future__ import annotations

from collections.abc import Sequence

from livegesture.pipeline.runner import PipelineStats
from livegesture.sources.labels import CLASS_NAMES

NO_GESTURE_TEXT = "no gesture"
WAITING_TEXT = "waiting for the first window"
LABEL_KEYS = "1234567890-"
"""Key ``LABEL_KEYS[k]`` marks class ``k`` (0-based): the 1-based class of the DVS Gesture
label files, with 0 for class 10 and '-' for class 11."""


def label_for_key(text: str) -> int | None:
    """The class (0-based) a typed key marks, or None for any other key."""
    return LABEL_KEYS.index(text) if len(text) == 1 and text in LABEL_KEYS else None


def label_keys_help(class_names: Sequence[str] = CLASS_NAMES) -> str:
    """One line per key: ``1  hand clapping`` ... ``-  other gestures``."""
    return "\n".join(f"{key}  {name}" for key, name in zip(LABEL_KEYS, class_names))


def class_text(label: int | None, class_names: Sequence[str]) -> str:
    """A class's name; ``NO_GESTURE_TEXT`` for None."""
    return NO_GESTURE_TEXT if label is None else class_names[label]


def accuracy_text(correct: int, total: int) -> str:
    """``running accuracy 75% (3 of 4 decisions during gestures)``; a dash before any."""
    if not total:
        return "running accuracy -"
    return f"running accuracy {100 * correct / total:.0f}% ({correct} of {total} decisions during gestures)"


def stats_text(stats: PipelineStats) -> str:
    """The status bar's figures."""
    return (f"{stats.events_per_s:,.0f} events/s   {stats.frames_per_s:.1f} frames/s   "
            f"step {stats.step_ms:.2f} ms   latency {stats.latency_ms_mean:.0f} ms (p95 {stats.latency_ms_p95:.0f})   "
            f"dropped {stats.dropped_frames:,} frames, {stats.dropped_events:,} events")
