"""The IBM DVS128 Gesture dataset folder, read and cut as SpikingJelly prepares it.

Layout (``DvsGesture/`` in IBM's archive): ``userNN_<lighting>.aedat`` recordings,
their ``userNN_<lighting>_labels.csv`` sidecars, and the split lists
``trials_to_train.txt`` / ``trials_to_test.txt``, one ``.aedat`` file name a line
(surrounding whitespace and blank lines ignored). Each labelled segment becomes one
sample: the events with ``start <= t < end``, label = CSV class - 1, as SpikingJelly's
``_split_aedat_files_to_np`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from livegesture.events import DVS128_SIZE, EventFormatError, SensorSize
from livegesture.sources import RecordingEvents, read_recording
from livegesture.sources.labels import GestureSegment, cut_segments, labels_path_for, read_labels

DATASET_DIR = "DvsGesture"
TRIALS_LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
RECORDING_SUFFIX = ".aedat"
LIGHTING_CONDITIONS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")

Split = Literal["train", "test", "all"]


def trial_name(user: int, lighting: str) -> str:
    """A recording's file name in IBM's scheme: ``trial_name(1, "led") == "user01_led.aedat"``."""
    if lighting not in LIGHTING_CONDITIONS:
        raise ValueError(f"unknown lighting {lighting!r}; expected one of {', '.join(LIGHTING_CONDITIONS)}")
    return f"user{user:02d}_{lighting}{RECORDING_SUFFIX}"


def user_of(recording: Path) -> int:
    """The user number of an IBM-style recording name (``user07_led.aedat`` -> 7), else -1."""
    match = re.match(r"user(\d+)", recording.name)
    return int(match.group(1)) if match else -1


@dataclass(frozen=True)
class GestureSample:
    """One labelled gesture of a recording: the ``index``-th row of its label file.

    ``events`` is a view into the recording's events, of a sensor of ``sensor_size``.
    """

    recording: Path
    index: int
    segment: GestureSegment
    events: np.ndarray
    sensor_size: SensorSize = DVS128_SIZE

    @property
    def label(self) -> int:
        """The 0-based class."""
        return self.segment.label


def _check_names(source: Path, names: list[str]) -> None:
    for name in names:
        if Path(name).name != name or not name.endswith(RECORDING_SUFFIX):
            raise EventFormatError(source, f"{name!r} is not an {RECORDING_SUFFIX} file name")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise EventFormatError(source, f"trials listed more than once: {', '.join(repeated)}")


def _check_disjoint(source: Path, train: list[str], test: list[str]) -> None:
    both = sorted(set(train) & set(test))
    if both:
        raise EventFormatError(source, f"trials in both the train and the test list: {', '.join(both)}")


def _read_trials_list(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as err:
        raise EventFormatError(path, f"cannot read trials list: {err.strerror or err}") from err
    names = [line.strip() for line in text.splitlines() if line.strip()]
    _check_names(path, names)
    return names


class DvsGestureFolder:
    """A DVS Gesture folder: ``root`` itself, or its ``DvsGesture/`` subfolder when
    ``root`` has no trials lists but that subfolder does.

    Both trials lists must exist, name ``.aedat`` files once each and not share trials.
    """

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        nested = root / DATASET_DIR
        if not (root / TRIALS_LISTS["train"]).exists() and (nested / TRIALS_LISTS["train"]).exists():
            root = nested
        self.root = root
        self._names = {split: _read_trials_list(root / name) for split, name in TRIALS_LISTS.items()}
        self.skipped: list[EventFormatError] = []
        """Recordings :meth:`samples` left out, as their errors."""
        _check_disjoint(root, self._names["train"], self._names["test"])

    def trials(self, split: Split = "all") -> list[Path]:
        """The recordings of a split in list order (``"all"``: train then test).

        Raises :class:`EventFormatError` naming a listed recording or label file that is missing.
        """
        if split == "all":
            splits = list(TRIALS_LISTS)
        elif split in TRIALS_LISTS:
            splits = [split]
        else:
            raise ValueError(f"unknown split {split!r}; expected 'train', 'test' or 'all'")
        paths = []
        for listed in splits:
            for path in (self.root / name for name in self._names[listed]):
                for needed in (path, labels_path_for(path)):
                    if not needed.is_file():
                        raise EventFormatError(
                            needed, f"file is missing: {path.name} is listed in {TRIALS_LISTS[listed]}")
                paths.append(path)
        return paths

    def recordings(self, split: Split = "all") -> Iterator[tuple[Path, list[GestureSegment], RecordingEvents]]:
        """``(path, labels, recording)`` of each of the split's recordings (AEDAT 3.1, or jAER's
        AEDAT 2.0), one read at a time.

        A recording or label file that cannot be read is left out, and its error appended to
        :attr:`skipped`: one bad file does not end a training run.
        """
        for path in self.trials(split):
            try:
                segments = read_labels(labels_path_for(path))
                recording = read_recording(path)
            except EventFormatError as err:
                self.skipped.append(err)
                continue
            yield path, segments, recording

    def samples(self, split: Split = "all") -> Iterator[GestureSample]:
        """Every labelled gesture of the split's :meth:`recordings`."""
        for path, segments, recording in self.recordings(split):
            for index, (segment, cut) in enumerate(zip(segments, cut_segments(recording.events, segments))):
                yield GestureSample(path, index, segment, cut, recording.sensor_size)


def write_trials_lists(root: str | Path, train: Iterable[str | Path], test: Iterable[str | Path]) -> None:
    """Write ``trials_to_train.txt`` and ``trials_to_test.txt`` under ``root`` (created if needed).

    Entries are recording file names (or paths, whose names are written), one a line.
    """
    root = Path(root)
    lists = {"train": [Path(name).name for name in train], "test": [Path(name).name for name in test]}
    for split, names in lists.items():
        _check_names(root / TRIALS_LISTS[split], names)
    _check_disjoint(root, lists["train"], lists["test"])
    root.mkdir(parents=True, exist_ok=True)
    for split, names in lists.items():
        (root / TRIALS_LISTS[split]).write_text("".join(f"{name}\n" for name in names))
