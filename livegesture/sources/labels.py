"""Gesture labels in the DVS128 Gesture CSV format, and cutting recordings by them.

The file format is that of IBM's ``userNN_<lighting>_labels.csv``: a header
``class,startTime_usec,endTime_usec`` then one row per gesture, classes 1-based
(1..11). Inside livegesture labels are 0-based, as in SpikingJelly. Messages number the
gesture rows from 1 after the header (blank lines not counted), as the evaluation's skip
tables do. The file is UTF-8 text; a byte-order mark (as some spreadsheets write) is accepted.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.events import EventFormatError

CLASS_NAMES: tuple[str, ...] = (
    "hand clapping",
    "right hand wave",
    "left hand wave",
    "right arm clockwise",
    "right arm counter-clockwise",
    "left arm clockwise",
    "left arm counter-clockwise",
    "arm roll",
    "air drums",
    "air guitar",
    "other gestures",
)
NUM_CLASSES = len(CLASS_NAMES)
MIRRORED_CLASS: tuple[int, ...] = (0, 2, 1, 6, 5, 4, 3, 7, 8, 9, 10)
"""The class a gesture becomes in a left-right mirrored view: the arm changes side and a
circle's sense on the image reverses (right arm clockwise -> left arm counter-clockwise)."""
NO_GESTURE_NAME = "no gesture"
"""What the terminal, the window and the reports call a label of None: no gesture (or none sure)."""
LABELS_HEADER = ("class", "startTime_usec", "endTime_usec")
LABELS_SUFFIX = "_labels.csv"
MAX_TIME_US = np.iinfo(np.int64).max
"""Label times are compared with int64 event timestamps."""


@dataclass(frozen=True)
class GestureSegment:
    """One labelled gesture: 0-based ``label`` over ``start_us <= t < end_us``."""

    label: int
    start_us: int
    end_us: int

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.label]


def label_name(label: int | None, class_names: Sequence[str] = CLASS_NAMES) -> str:
    """A class's name; :data:`NO_GESTURE_NAME` for None."""
    return NO_GESTURE_NAME if label is None else class_names[label]


def active_segment(times_us: np.ndarray, segments: Sequence[GestureSegment]) -> np.ndarray:
    """Index of the segment active at each time (``start <= t < end``, the latest to start
    among overlapping ones), or -1."""
    if not segments:
        return np.full(len(times_us), -1, dtype=np.intp)
    order = np.argsort([s.start_us for s in segments], kind="stable")
    starts = np.array([segments[i].start_us for i in order], dtype=np.int64)
    ends = np.array([segments[i].end_us for i in order], dtype=np.int64)
    active = np.full(len(times_us), -1, dtype=np.intp)
    for rank in range(len(order)):  # later starts overwrite: the latest to start wins
        inside = (times_us >= starts[rank]) & (times_us < ends[rank])
        active[inside] = order[rank]
    return active


def true_label_at(segments: Sequence[GestureSegment], t_us: int) -> int | None:
    """The class labelled at ``t_us`` (the latest-starting of overlapping gestures), None outside gestures."""
    (index,) = active_segment(np.array([t_us], dtype=np.int64), segments)
    return segments[index].label if index >= 0 else None


def labels_path_for(recording: str | Path) -> Path:
    """The sidecar label file of a recording: ``user01_led.aedat`` -> ``user01_led_labels.csv``."""
    recording = Path(recording)
    return recording.with_name(recording.stem + LABELS_SUFFIX)


def read_labels(path: str | Path) -> list[GestureSegment]:
    """Read a DVS Gesture label file; errors name the file and the row."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise EventFormatError(path, f"cannot read label file: {err.strerror or err}") from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise EventFormatError(path, f"label file is not UTF-8 text (byte {err.start}: {data[err.start]:#04x})") from None
    rows = [row for row in csv.reader(text.splitlines()) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise EventFormatError(path, "label file is empty")
    if tuple(cell.strip() for cell in rows[0]) != LABELS_HEADER:
        raise EventFormatError(path, f"label file must start with the header {','.join(LABELS_HEADER)}, "
                                     f"got {','.join(rows[0])!r}")
    segments = []
    for row_no, row in enumerate(rows[1:], start=1):
        try:
            label, start, end = (int(cell) for cell in row)
        except ValueError:
            raise EventFormatError(path, f"row {row_no}: expected three integers, got {','.join(row)!r}") from None
        if not 1 <= label <= NUM_CLASSES:
            raise EventFormatError(path, f"row {row_no}: class {label} outside 1..{NUM_CLASSES}")
        if start < 0 or end <= start:
            raise EventFormatError(path, f"row {row_no}: segment [{start}, {end}) is empty or negative")
        if end > MAX_TIME_US:
            raise EventFormatError(path, f"row {row_no}: time {end} us is beyond the int64 range of timestamps")
        segments.append(GestureSegment(label - 1, start, end))
    return segments


def write_labels(path: str | Path, segments: list[GestureSegment]) -> None:
    """Write segments in the DVS Gesture label format (1-based classes)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(LABELS_HEADER)
        for segment in segments:
            writer.writerow((segment.label + 1, segment.start_us, segment.end_us))


def cut_segments(events: np.ndarray, segments: list[GestureSegment]) -> list[np.ndarray]:
    """The events of each segment, ``start_us <= t < end_us``, as SpikingJelly cuts DVS Gesture.

    Segments may overlap (some real label files do); ``events`` must be time-sorted.
    """
    t = np.ascontiguousarray(events["t"])  # a strided field view would be copied by every searchsorted
    cuts = []
    for segment in segments:
        lo, hi = np.searchsorted(t, [segment.start_us, segment.end_us], side="left")
        cuts.append(events[lo:hi])
    return cuts
