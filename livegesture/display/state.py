"""What a display shows of a running pipeline, built from its updates alone: pure, no Qt.

The pipeline publishes (:class:`~livegesture.pipeline.runner.PipelineUpdate`), a
:class:`DisplayState` takes each update (:meth:`DisplayState.apply`) and the window draws it
or the terminal prints it (:meth:`DisplayState.line`): both show the same prediction, true
label, running accuracy and timeline. Scoring follows
:func:`livegesture.evaluate.metrics.score_stream`: a decision is scored against the gesture
active at its ``t_us``; the running accuracy is that of the decisions inside gestures (a
"no gesture" decision there is wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from livegesture.display.text import WAITING_TEXT, accuracy_text, confidence_text
from livegesture.display.timeline import TIMELINE_SPAN_US, DecisionTimeline, Run, timeline_span, truth_runs
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.runner import PipelineUpdate
from livegesture.sources.labels import GestureSegment, active_segment, label_name, true_label_at

NAME_WIDTH = 27
"""Width of the longest DVS Gesture class name (right arm counter-clockwise), for aligned lines."""


class RunningAccuracy:
    """Accuracy of the decisions inside labelled gestures so far (constant memory)."""

    def __init__(self, segments: Sequence[GestureSegment]) -> None:
        self.segments = list(segments)
        self.correct = 0
        self.total = 0

    def add(self, times_us: Sequence[int], labels: Sequence[int | None]) -> None:
        """Score a batch of decisions (label None = no gesture)."""
        active = active_segment(np.asarray(times_us, dtype=np.int64), self.segments)
        for index, label in zip(active, labels):
            if index >= 0:
                self.total += 1
                self.correct += label == self.segments[index].label

    def reset(self) -> None:
        self.correct = self.total = 0

    @property
    def accuracy(self) -> float | None:
        """Correct / decisions inside gestures; None before the first such decision."""
        return self.correct / self.total if self.total else None


@dataclass(frozen=True)
class TimelineView:
    """The timeline to draw: runs over ``[start_us, end_us)``, times shown from ``origin_us``."""

    predicted: list[Run]
    truth: list[Run] | None
    """The labelled gestures (None: an unlabelled source)."""
    origin_us: int
    start_us: int
    end_us: int


class DisplayState:
    """The display of one source: ``name``, its ``labels`` (None: unlabelled), ``live`` (a camera)."""

    def __init__(self, name: str, labels: Sequence[GestureSegment] | None, live: bool,
                 span_us: int = TIMELINE_SPAN_US) -> None:
        self.name = name
        self.labels = list(labels) if labels is not None else None
        self.live = live
        self.timeline = DecisionTimeline(span_us)
        self.accuracy = RunningAccuracy(self.labels or [])
        self.update: PipelineUpdate | None = None
        """The latest update applied."""
        self.first_us: int | None = None
        """Event time of the first event: the timeline's origin."""
        self.now_us = 0
        """Event time of the latest event."""
        self.new_decision = False
        """The latest update brought a decision."""
        self.message: str | None = None
        """What the latest update has to say for the first time: a warning, or the error that stopped the pipeline."""

    def apply(self, update: PipelineUpdate) -> None:
        """Take one update of the pipeline."""
        if update.events.size:
            self.now_us = int(update.events["t"][-1])
            self.first_us = int(update.events["t"][0]) if self.first_us is None else self.first_us
        for decision in update.decisions:
            self.timeline.add(decision.t_us, decision.label)
        self.accuracy.add([d.t_us for d in update.decisions], [d.label for d in update.decisions])
        new_error = update.error is not None and (self.update is None or self.update.error != update.error)
        self.message = update.warning or (update.error if new_error else None)
        self.new_decision = bool(update.decisions)
        self.update = update

    @property
    def prediction(self) -> Decision | None:
        return self.update.prediction if self.update is not None else None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.update.class_names if self.update is not None else ()

    @property
    def true_label(self) -> int | None:
        """The gesture labelled at the latest event (None: between gestures, or unlabelled)."""
        return true_label_at(self.labels, self.now_us) if self.labels else None

    @property
    def finished(self) -> bool:
        return self.update is not None and self.update.finished

    def accuracy_line(self) -> str:
        return accuracy_text(self.accuracy.correct, self.accuracy.total)

    def status(self) -> str:
        """What the pipeline is doing, in words: the status bar's message."""
        update = self.update
        if update is None:
            return f"starting {self.name}"
        if update.error is not None:
            return update.error
        if update.switching is not None:
            return f"loading {update.switching}\u2026 (the prediction waits for it)"
        if update.finished:
            return f"end of {self.name}: press Play to replay it"
        if not update.stats.events_in and not update.paused:
            return f"starting {self.name}"
        if update.paused:
            return f"paused {self.name} ({update.backend} backend): Step shows one more frame"
        return f"{'live from' if self.live else 'playing'} {self.name} ({update.backend} backend)"

    def timeline_view(self) -> TimelineView | None:
        """The timeline (None before the first event)."""
        if self.first_us is None:
            return None
        start, end = timeline_span(self.first_us, self.now_us, self.timeline.span_us)
        truth = truth_runs(self.labels, start, self.now_us) if self.labels is not None else None
        return TimelineView(self.timeline.runs(self.now_us), truth, self.first_us, start, end)

    def line(self) -> str:
        """One line for a terminal: the prediction and its confidence, the true gesture of a
        labelled source, then the figures."""
        decision = self.prediction
        if decision is None:
            prediction = f"{WAITING_TEXT:<{NAME_WIDTH + 27}}"
        else:
            name = label_name(decision.label, self.class_names)
            prediction = f"{name:<{NAME_WIDTH}} {confidence_text(decision):<26}"
        if self.labels is not None:
            prediction += f"  true: {label_name(self.true_label, self.class_names):<{NAME_WIDTH}}"
        figures = self.update.stats.figures() if self.update is not None else ""
        return f"{prediction}  {figures}"
