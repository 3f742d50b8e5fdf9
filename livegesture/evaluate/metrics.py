"""Scoring, as pure functions of labels and decisions.

**Per sample** (the number to compare with published DVS Gesture accuracies): one
prediction per labelled gesture; :class:`ClassScores` holds the confusion matrix (row =
true class, column = predicted class), the overall accuracy and each class's accuracy
(the fraction of its gestures predicted as it, i.e. its recall).

**Streaming** (what a user of the live app sees), :func:`score_stream`: the app emits a
stream of decisions, each with a time ``t_us`` and a label (None = no gesture /
uncertain). Each decision is scored against the label *active at* ``t_us``: the labelled
gesture with ``start_us <= t_us < end_us`` (of overlapping ones the latest to start);
outside every gesture the truth is "no gesture".

* *accuracy per frame* = correct decisions / decisions inside gestures (a None decision
  inside a gesture is wrong);
* *idle rejection* = None decisions / decisions outside gestures;
* a confusion matrix of all decisions, "no gesture" being one more class (truth outside
  gestures, prediction None);
* per gesture, *time to first correct decision* = ``t_us`` of its first correct decision
  minus ``start_us`` (None when never correct, also when no decision fell inside it);
* *false switches* of a gesture = consecutive decisions ``a``, ``b`` both inside it with
  ``b.label != a.label`` and ``b.label`` a class other than the true one (a change to
  "no gesture" is not a false switch; a change from it to a wrong class is);
* *accuracy vs time since onset*: inside-gesture decisions binned by ``t_us - start_us``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from livegesture.sources.labels import GestureSegment, active_segment

NO_GESTURE = -1
"""A decision of no class, in integer arrays (Decision.label None)."""
ONSET_BIN_US = 250_000
"""Width of the time-since-onset bins of the accuracy curve."""


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _padded(counts: np.ndarray, size: int) -> np.ndarray:
    return np.pad(counts, (0, size - len(counts)))


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.intp), np.asarray(predictions, dtype=np.intp)), 1)
    return matrix


@dataclass(frozen=True)
class ClassScores:
    """Accuracy figures read off a confusion matrix (row = true class)."""

    confusion: np.ndarray

    @classmethod
    def of(cls, labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> ClassScores:
        return cls(confusion_matrix(labels, predictions, num_classes))

    @property
    def samples(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float | None:
        """Correct / samples; None without samples."""
        return _ratio(self.correct, self.samples)

    @property
    def class_samples(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def class_correct(self) -> np.ndarray:
        return np.diag(self.confusion).copy()

    @property
    def class_accuracy(self) -> list[float | None]:
        """Per true class: correct / its samples (None for a class without samples)."""
        return [_ratio(int(c), int(n)) for c, n in zip(self.class_correct, self.class_samples)]


@dataclass(frozen=True)
class GestureOutcome:
    """How the decision stream did during one labelled gesture."""

    label: int
    start_us: int
    end_us: int
    decisions: int
    correct: int
    first_correct_us: int | None
    """Time from onset to the first correct decision; None if none was correct."""
    false_switches: int


@dataclass(frozen=True)
class OnsetCurve:
    """Inside-gesture decisions counted per ``bin_us``-wide bin of time since onset."""

    bin_us: int
    correct: np.ndarray
    total: np.ndarray

    @classmethod
    def empty(cls, bin_us: int = ONSET_BIN_US) -> OnsetCurve:
        return cls(bin_us, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def __add__(self, other: OnsetCurve) -> OnsetCurve:
        if other.bin_us != self.bin_us:
            raise ValueError(f"cannot add curves of {self.bin_us} and {other.bin_us} us bins")
        size = max(len(self.total), len(other.total))
        return OnsetCurve(self.bin_us, _padded(self.correct, size) + _padded(other.correct, size),
                          _padded(self.total, size) + _padded(other.total, size))

    @property
    def accuracy(self) -> np.ndarray:
        """Per bin: correct / total (NaN for an empty bin)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.total > 0, self.correct / np.maximum(self.total, 1), np.nan)


@dataclass(frozen=True)
class StreamScore:
    """The streaming scores of one or more recordings (see the module docstring).

    ``decisions`` is a confusion matrix of all decisions with one more class than the model,
    "no gesture" (last row: decisions outside every gesture; last column: None decisions).
    """

    gestures: tuple[GestureOutcome, ...]
    decisions: ClassScores
    curve: OnsetCurve

    @classmethod
    def empty(cls, num_classes: int, bin_us: int = ONSET_BIN_US) -> StreamScore:
        """No gestures, no decisions: the start of a sum."""
        return cls((), ClassScores(np.zeros((num_classes + 1,) * 2, dtype=np.int64)), OnsetCurve.empty(bin_us))

    def __add__(self, other: StreamScore) -> StreamScore:
        return StreamScore(self.gestures + other.gestures,
                           ClassScores(self.decisions.confusion + other.decisions.confusion), self.curve + other.curve)

    @property
    def frame_accuracy(self) -> float | None:
        """Correct decisions / decisions inside gestures."""
        confusion = self.decisions.confusion
        return _ratio(int(np.trace(confusion[:-1, :-1])), int(confusion[:-1].sum()))

    @property
    def idle_rejection(self) -> float | None:
        """"No gesture" decisions / decisions outside gestures."""
        return _ratio(int(self.decisions.confusion[-1, -1]), int(self.decisions.confusion[-1].sum()))

    @property
    def latencies_us(self) -> np.ndarray:
        """Time to first correct decision of the gestures that had one."""
        return np.array([g.first_correct_us for g in self.gestures if g.first_correct_us is not None], dtype=np.int64)

    @property
    def never_correct(self) -> float | None:
        """Fraction of gestures without any correct decision."""
        return _ratio(sum(g.first_correct_us is None for g in self.gestures), len(self.gestures))

    @property
    def false_switches(self) -> int:
        return sum(g.false_switches for g in self.gestures)

    @property
    def switches_per_gesture(self) -> float | None:
        """False switches / gestures; None without gestures."""
        return _ratio(self.false_switches, len(self.gestures))

    @property
    def median_latency_s(self) -> float | None:
        latencies = self.latencies_us
        return float(np.median(latencies)) / 1e6 if latencies.size else None

    def latency_stats(self) -> dict[str, float | None]:
        """Median, mean and 90th percentile of the time to first correct decision, in seconds."""
        latencies = self.latencies_us / 1e6
        if not latencies.size:
            return {"median_s": None, "mean_s": None, "p90_s": None}
        return {"median_s": float(np.median(latencies)), "mean_s": float(latencies.mean()),
                "p90_s": float(np.percentile(latencies, 90))}

    def summary(self) -> dict[str, object]:
        """The headline figures (JSON-ready)."""
        return {"frame_accuracy": self.frame_accuracy, "idle_rejection": self.idle_rejection,
                "gestures": len(self.gestures), "never_correct": self.never_correct,
                "false_switches": self.false_switches, "latency": self.latency_stats(),
                "decisions": self.decisions.samples}


def _false_switches(decided: np.ndarray, label: int) -> int:
    changes = decided[1:] != decided[:-1]
    wrong = (decided[1:] != NO_GESTURE) & (decided[1:] != label)
    return int(np.count_nonzero(changes & wrong))


def score_stream(times_us: Sequence[int], decided: Sequence[int | None], segments: Sequence[GestureSegment],
                 num_classes: int, bin_us: int = ONSET_BIN_US) -> StreamScore:
    """Score one recording's time-ordered decisions (label None = no gesture) against its labels."""
    times = np.asarray(times_us, dtype=np.int64)
    labels = np.array([NO_GESTURE if d is None else d for d in decided], dtype=np.int64)
    active = active_segment(times, segments)
    truth = np.array([segments[a].label if a >= 0 else num_classes for a in active], dtype=np.int64)
    decisions = ClassScores.of(truth, np.where(labels == NO_GESTURE, num_classes, labels), num_classes + 1)
    outcomes, correct_bins, total_bins = [], [], []
    for index, segment in enumerate(segments):
        inside = np.flatnonzero(active == index)
        hits = labels[inside] == segment.label
        first = int(times[inside[hits][0]] - segment.start_us) if hits.any() else None
        outcomes.append(GestureOutcome(segment.label, segment.start_us, segment.end_us, len(inside),
                                       int(hits.sum()), first, _false_switches(labels[inside], segment.label)))
        bins = (times[inside] - segment.start_us) // bin_us
        correct_bins.append(bins[hits])
        total_bins.append(bins)
    none = np.zeros(0, dtype=np.int64)
    all_bins, hit_bins = np.concatenate([none, *total_bins]), np.concatenate([none, *correct_bins])
    size = int(all_bins.max()) + 1 if all_bins.size else 0
    curve = OnsetCurve(bin_us, np.bincount(hit_bins, minlength=size), np.bincount(all_bins, minlength=size))
    return StreamScore(tuple(outcomes), decisions, curve)
