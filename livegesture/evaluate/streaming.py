"""Streaming evaluation: the live pipeline's decisions over whole recordings, scored over time.

Each recording runs through :func:`livegesture.pipeline.engine.decide_stream` (noise filter
if set, sliding integrator, prediction engine, running prediction: what the live app
decides on a lossless replay) at the chosen :class:`PipelineSettings`; the decisions are
scored against the recording's labels by :func:`livegesture.evaluate.metrics.score_stream`.
Gestures that cannot be scored (no events, labels outside the recording, a class the
model lacks) are left out of the scoring and reported, as in the per-sample mode.

A task is one recording at the settings of a ``tune`` grid that differ only in the decision
policy (smoothing, thresholds, hysteresis): the network runs once and the window counts are
replayed through each policy (:func:`replay_policy`, exact: the policy only reads the counts).
So the same pool serves ``eval --streaming`` and ``tune``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from livegesture.evaluate.metrics import StreamScore, score_stream
from livegesture.evaluate.per_sample import frame_size
from livegesture.evaluate.pool import run_pool
from livegesture.evaluate.recordings import (
    Inventory,
    Skipped,
    describe_error,
    moved_segments,
    read_events_cached,
    usable_gestures,
)
from livegesture.integrate import NET_INPUT_SIZE
from livegesture.model.files import CriModel, ModelFileError, load_model, sensor_mismatch
from livegesture.pipeline.decision import Decision, RunningPrediction
from livegesture.pipeline.engine import backend_label, decide_stream, resolve_backend
from livegesture.pipeline.settings import POLICY_SETTINGS, PipelineSettings
from livegesture.sources.labels import NO_GESTURE_NAME, GestureSegment
from livegesture.sources.resets import OnReset, label_parts


@dataclass(frozen=True)
class StreamTask:
    """One recording (its labelled gestures) at several settings that differ only in the
    decision policy (:data:`POLICY_SETTINGS`): ``points[i]`` numbers ``settings[i]`` in a grid."""

    recording: Path
    segments: tuple[GestureSegment, ...]
    settings: tuple[PipelineSettings, ...]
    points: tuple[int, ...]
    on_reset: OnReset = "error"


@dataclass(frozen=True)
class RecordingStream:
    """One recording's streaming score at one setting (None when it could not be read)."""

    recording: str
    point: int
    score: StreamScore | None
    skipped: tuple[Skipped, ...]
    seconds: float
    warning: str | None = None
    """Set when the recording's sensor is not the one the model was trained on."""

    def row(self) -> dict[str, Any]:
        """The per-recording table's row (JSON-ready)."""
        row: dict[str, Any] = {"recording": self.recording, "point": self.point, "seconds": self.seconds,
                               "skipped": sum(s.samples for s in self.skipped)}
        if self.score is not None:
            row.update(self.score.summary(), median_latency_s=self.score.median_latency_s)
        return row


def replay_policy(decisions: list[Decision], settings: PipelineSettings, num_classes: int) -> list[Decision]:
    """The decisions a stream would have had under another decision policy: each window's raw
    counts (the same whatever the policy) fed again, in order, to a fresh
    :class:`~livegesture.pipeline.decision.RunningPrediction`, as the engine feeds its one."""
    prediction = RunningPrediction.of(num_classes, settings)
    return [prediction.replay(d) for d in decisions]


def stream_recording(model: CriModel, task: StreamTask) -> list[RecordingStream]:
    """Run one recording through the live pipeline's decisions once, then score them under
    each of the task's decision policies."""
    started = time.perf_counter()
    name = str(task.recording)
    network = model.network
    try:
        recording = read_events_cached(task.recording, task.on_reset)
        warning = sensor_mismatch(recording.sensor_size, model.info.sensor_size)
        segments = moved_segments(task.segments, label_parts(list(task.segments)), recording)
        gestures, skipped = usable_gestures(name, recording.events, range(len(segments)), segments,
                                            network.num_outputs)
        decisions = list(decide_stream((recording.events,), recording.sensor_size, network, task.settings[0]))
    except Exception as err:  # one bad file must not end the run: report it, go on
        whole = Skipped(name, describe_error(err), samples=len(task.segments))
        seconds = time.perf_counter() - started
        return [RecordingStream(name, point, None, (whole,), seconds) for point in task.points]
    results = []
    for point, settings in zip(task.points, task.settings):
        replayed = replay_policy(decisions, settings, network.num_outputs)
        score = score_stream([d.t_us for d in replayed], [d.label for d in replayed],
                             [g.segment for g in gestures], network.num_outputs)
        results.append(RecordingStream(name, point, score, tuple(skipped), time.perf_counter() - started,
                                       warning and f"{name}: {warning}"))
    return results


_loaded: CriModel | None = None
"""This process's model (by :func:`init_stream_worker`)."""


def init_stream_worker(model: Path) -> CriModel:
    """Load the model once per process and model file."""
    global _loaded
    if _loaded is None or _loaded.path != model:
        _loaded = load_model(model)
    return _loaded


def stream_task(task: StreamTask) -> list[RecordingStream]:
    """A task on this process's network (after :func:`init_stream_worker`)."""
    assert _loaded is not None, "init_stream_worker runs first"
    return stream_recording(_loaded, task)


def stream_tasks(inventory: Inventory, settings: list[PipelineSettings]) -> list[StreamTask]:
    """Every recording at every setting, grouped so that settings differing only in the decision
    policy share one run of the network; group by group, so that an interrupted ``tune`` has
    whole settings done (reading a recording again costs little next to running it)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for point, setting in enumerate(settings):
        upstream = tuple(value for name, value in asdict(setting).items() if name not in POLICY_SETTINGS)
        groups.setdefault(upstream, []).append(point)
    return [StreamTask(recording.path, recording.segments, tuple(settings[p] for p in points), tuple(points),
                       inventory.on_reset)
            for points in groups.values() for recording in inventory.recordings]


def run_streams(inventory: Inventory, model: Path, settings: list[PipelineSettings], *, workers: int = 1,
                progress: Any = None, timeout_s: float | None = None) -> tuple[list[RecordingStream], int]:
    """Every recording at every setting in a process pool; ``progress`` (tqdm, optional) counts
    recordings. A task running longer than ``timeout_s`` is stopped and its recording reported
    as skipped (not on ``cri``). Returns the results and the number of tasks not run (Ctrl-C)."""
    loaded = init_stream_worker(model)  # a bad model fails here, before any worker starts
    if frame_size(loaded) != NET_INPUT_SIZE:
        raise ModelFileError(model, f"the live pipeline makes {NET_INPUT_SIZE}x{NET_INPUT_SIZE} frames; the network "
                                    f"takes {loaded.network.input_shape}")
    if any(resolve_backend(s.backend) == "cri" or s.remote for s in settings):
        workers, timeout_s = 1, None  # one chip, or one server (which does the work)
    run = run_pool(stream_task, stream_tasks(inventory, settings), workers=workers,
                   initializer=init_stream_worker, initargs=(model,),
                   on_result=None if progress is None else (lambda results: progress.update(len(results))),
                   timeout_s=timeout_s)
    results = [result for task_results in run.results for result in task_results]
    results += [RecordingStream(str(task.recording), point, None,
                                (Skipped(str(task.recording), reason, samples=len(task.segments)),), 0.0)
                for task, reason in run.failed for point in task.points]
    not_run = sum(len(task.points) for task in run.unfinished)
    return sorted(results, key=lambda r: (r.point, r.recording)), not_run


def total_score(results: list[RecordingStream], num_classes: int) -> StreamScore:
    """The scores of several recordings together."""
    return sum((r.score for r in results if r.score is not None), StreamScore.empty(num_classes))


@dataclass(frozen=True)
class StreamEvaluation:
    """The outcome of ``eval --streaming``: one setting over the recordings of a source."""

    source: str
    settings: PipelineSettings
    class_names: tuple[str, ...]
    recordings: tuple[RecordingStream, ...]
    skipped: tuple[Skipped, ...]
    not_run: int
    seconds: float

    @property
    def score(self) -> StreamScore:
        return total_score(list(self.recordings), len(self.class_names))

    @property
    def backend(self) -> str:
        return backend_label(self.settings)

    @property
    def warnings(self) -> list[str]:
        return sorted({r.warning for r in self.recordings if r.warning})

    def to_dict(self) -> dict[str, Any]:
        score = self.score
        return {
            "mode": "streaming", "source": self.source, "backend": self.backend, "settings": asdict(self.settings),
            "class_names": list(self.class_names), **score.summary(),
            "decision_confusion_matrix": score.decisions.confusion.tolist(),
            "decision_classes": [*self.class_names, NO_GESTURE_NAME],
            "onset_curve": {"bin_s": score.curve.bin_us / 1e6, "correct": score.curve.correct.tolist(),
                            "total": score.curve.total.tolist()},
            "gesture_outcomes": [asdict(g) for g in score.gestures],
            "recordings": [r.row() for r in self.recordings], "skipped": [s.to_dict() for s in self.skipped],
            "warnings": self.warnings,
            "not_run": self.not_run, "interrupted": self.not_run > 0, "seconds": self.seconds,
        }


def evaluate_stream(inventory: Inventory, settings: PipelineSettings, *, workers: int = 1,
                    progress: Any = None, timeout_s: float | None = None) -> StreamEvaluation:
    """Streaming evaluation of one setting (see the module docstring)."""
    model = Path(settings.model)
    started = time.perf_counter()
    results, not_run = run_streams(inventory, model, [settings], workers=workers, progress=progress,
                                   timeout_s=timeout_s)
    class_names = init_stream_worker(model).info.class_names
    skipped = [*inventory.skipped, *(s for r in results for s in r.skipped)]
    return StreamEvaluation(inventory.source, settings, class_names, tuple(results), tuple(skipped), not_run,
                            time.perf_counter() - started)
