"""What the window and the terminal write: prediction, confidence and accuracy lines, label keys. No Qt."""

from __future__ import annotations

from collections.abc import Sequence

from livegesture.pipeline.decision import Decision
from livegesture.sources.labels import CLASS_NAMES

WAITING_TEXT = "waiting for the first window"
NO_SOURCE_TEXT = "no source"
NO_SOURCE_HINT = "open a recording or the camera (toolbar)"
"""What the prediction panel and the status bar say before any source is opened."""
CONFIDENCE_HELP = ("the shown class's share of the output spikes, averaged over the last windows: "
                   "how clearly the network prefers it, not a calibrated probability")
LABEL_KEYS = "1234567890-"
"""Key ``LABEL_KEYS[k]`` marks class ``k`` (0-based): the 1-based class of the DVS Gesture
label files, with 0 for class 10 and '-' for class 11."""


def label_for_key(text: str) -> int | None:
    """The class (0-based) a typed key marks, or None for any other key."""
    return LABEL_KEYS.index(text) if len(text) == 1 and text in LABEL_KEYS else None


def label_keys_help(class_names: Sequence[str] = CLASS_NAMES) -> str:
    """One line per key: ``1  hand clapping`` ... ``-  other gestures``."""
    return "\n".join(f"{key}  {name}" for key, name in zip(LABEL_KEYS, class_names))


def accuracy_text(correct: int, total: int) -> str:
    """``running accuracy 75% (3 of 4 decisions during gestures)``; a dash before any."""
    if not total:
        return "running accuracy -"
    return f"running accuracy {100 * correct / total:.0f}% ({correct} of {total} decisions during gestures)"


def confidence_text(decision: Decision) -> str:
    """What a decision's confidence is: ``62% of the output spikes`` for the class named (see
    :data:`CONFIDENCE_HELP`); for "no gesture", why: ``the scene is quiet``, ``no output spikes``,
    or this window's output spikes and its top class's share of them (``3 spikes, top 100%``: too
    few to count, or no class clear enough), never a share that reads as the no-gesture's."""
    if decision.label is not None:
        return f"{100 * decision.confidence:.0f}% of the output spikes"
    if decision.quiet:
        return "the scene is quiet"
    spikes = int(decision.counts.sum())
    if not spikes:
        return "no output spikes"
    return f"{count_text(spikes, 'spike')}, top {100 * decision.counts.max() / spikes:.0f}%"


def count_text(count: int, noun: str) -> str:
    """``1 gesture``, ``3 gestures``, ``1,200 events``, ``0 events``."""
    return f"{count:,} {noun if count == 1 else noun + 's'}"
