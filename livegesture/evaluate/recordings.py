"""What an evaluation reads: the labelled recordings a SOURCE names, and their events.

A SOURCE is a DVS Gesture folder in IBM's layout (a split of its trials lists), a folder
of recordings (every ``.aedat`` (AEDAT 2.0 or 3.1) / ``.aedat4`` file in it, labels from each
file's ``_labels.csv`` sidecar) or one recording. ``on_reset`` says what a recording's timestamp
resets do (:mod:`livegesture.sources.resets`); the labels move with their parts. A recording whose labels are missing or
unreadable is not fatal: it becomes a :class:`Skipped` entry and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from livegesture.events import EventFormatError, LivegestureError
from livegesture.sources import RECORDING_SUFFIXES, RecordingEvents, read_recording
from livegesture.sources.dataset import DATASET_DIR, TRIALS_LISTS, DvsGestureFolder, Split
from livegesture.sources.labels import GestureSegment, cut_segments, labels_path_for, read_labels
from livegesture.sources.resets import OnReset, shift_labels


@dataclass(frozen=True)
class Skipped:
    """Something left out of an evaluation, and why.

    ``segment`` is the row (0-based) of the label file, or None when the whole recording is
    left out; ``samples`` is the number of labelled gestures lost (0 when not known).
    """

    recording: str
    reason: str
    samples: int = 1
    segment: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"recording": self.recording, "segment": self.segment, "samples": self.samples,
                "reason": self.reason}


@dataclass(frozen=True)
class LabelledRecording:
    """A recording and its labelled gestures (the rows of its label file, in order)."""

    path: Path
    segments: tuple[GestureSegment, ...]


@dataclass(frozen=True)
class Inventory:
    """The labelled recordings of a source, and those left out with the reason."""

    source: str
    description: str
    recordings: tuple[LabelledRecording, ...]
    skipped: tuple[Skipped, ...]
    on_reset: OnReset = "error"

    @property
    def samples(self) -> int:
        """Labelled gestures in the usable recordings."""
        return sum(len(recording.segments) for recording in self.recordings)


def is_dataset_folder(path: Path) -> bool:
    """A folder in IBM's DVS Gesture layout (itself or its ``DvsGesture/`` subfolder holds the trials lists)."""
    return any((folder / TRIALS_LISTS["test"]).is_file() for folder in (path, path / DATASET_DIR))


def find_recordings(source: str | Path, split: Split = "test", on_reset: OnReset = "error") -> Inventory:
    """The labelled recordings a source names (see the module docstring).

    Raises :class:`LivegestureError` when the source does not exist, is not a recording or
    holds no labelled recording at all; a single recording without labels is an error too.
    """
    path = Path(source)
    if path.is_dir():
        if is_dataset_folder(path):
            folder = DvsGestureFolder(path)
            paths = folder.trials(split)
            description = f"DVS Gesture folder {folder.root}, {split} split"
        else:
            paths = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in RECORDING_SUFFIXES)
            description = f"folder {path}"
    elif path.is_file():
        if path.suffix.lower() not in RECORDING_SUFFIXES:
            raise EventFormatError(path, f"not a recording: expected {' or '.join(RECORDING_SUFFIXES)}")
        paths, description = [path], f"recording {path}"
    else:
        raise LivegestureError(f"{path}: no such file or folder")
    recordings, skipped = [], []
    for recording in paths:
        labels = labels_path_for(recording)
        if not labels.is_file():
            skipped.append(Skipped(str(recording), f"no label file {labels.name}", samples=0))
            continue
        try:
            recordings.append(LabelledRecording(recording, tuple(read_labels(labels))))
        except LivegestureError as err:
            skipped.append(Skipped(str(recording), str(err), samples=0))
    if not recordings:
        reasons = "; ".join(f"{Path(s.recording).name}: {s.reason}" for s in skipped[:3]) or "no recordings found"
        raise LivegestureError(f"{path}: nothing to evaluate ({reasons})")
    return Inventory(str(path), f"{description}: {len(recordings)} labelled recordings", tuple(recordings),
                     tuple(skipped), on_reset)


@lru_cache(maxsize=1)
def read_events_cached(path: Path, on_reset: OnReset = "error") -> RecordingEvents:
    """:func:`~livegesture.sources.read_recording`, remembering the last recording (a worker's
    consecutive tasks on one recording read it once)."""
    return read_recording(path, on_reset)


def moved_segments(segments: Sequence[GestureSegment], parts: Sequence[int], recording: RecordingEvents
                   ) -> tuple[GestureSegment, ...]:
    """Label rows moved as the recording's parts were (``parts``: each row's part, from
    :func:`~livegesture.sources.resets.label_parts` of the whole label file)."""
    return tuple(shift_labels(list(segments), recording.resets, list(parts)))


def describe_error(err: Exception) -> str:
    """A reason for a report: a user-facing error's message, or any other error with its type."""
    return str(err) if isinstance(err, LivegestureError) else f"unexpected {type(err).__name__}: {err}"


def segment_problem(segment: GestureSegment, event_count: int, time_span: tuple[int, int] | None,
                    num_classes: int) -> str | None:
    """Why a labelled gesture cannot be evaluated (``event_count`` of its events; ``time_span``
    = first and last timestamp of the recording, None if it has no events), or None."""
    where = f"label [{segment.start_us:,}, {segment.end_us:,}) us"
    if segment.label >= num_classes:
        return f"class {segment.label + 1} is not among the model's {num_classes} classes"
    if time_span is None:
        return f"{where}: the recording has no events"
    first, last = time_span
    if segment.end_us <= first or segment.start_us > last:
        return f"{where} lies outside the recording's events ({first:,} .. {last:,} us)"
    if event_count == 0:
        return f"{where} holds no events"
    return None


@dataclass(frozen=True)
class Gesture:
    """A labelled gesture that can be evaluated: its row in the label file and its events."""

    row: int
    segment: GestureSegment
    events: np.ndarray


def usable_gestures(recording: str, events: np.ndarray, rows: Sequence[int], segments: Sequence[GestureSegment],
                    num_classes: int) -> tuple[list[Gesture], list[Skipped]]:
    """The labelled gestures of a recording's ``events`` that can be evaluated, and the others
    as skipped with the reason (:func:`segment_problem`)."""
    span = (int(events["t"][0]), int(events["t"][-1])) if len(events) else None
    usable, skipped = [], []
    for row, segment, cut in zip(rows, segments, cut_segments(events, list(segments))):
        problem = segment_problem(segment, len(cut), span, num_classes)
        if problem is None:
            usable.append(Gesture(row, segment, cut))
        else:
            skipped.append(Skipped(recording, problem, segment=row))
    return usable, skipped
