"""Per-sample evaluation: every labelled gesture through the reference deployment.

Exactly as the nets are trained and tested: the gesture's events (``start <= t < end``)
-> :func:`~livegesture.geometry.integrate_field` (the sensor's region of interest mapped to the
128x128 field, the identity on a DVS128, then the model's ``timesteps`` equal-count frames)
-> :func:`~livegesture.backends.run_sample` (clear, one step per frame, the model's drain steps;
several gestures stepped together where the backend can, :meth:`~livegesture.backends.Backend.run_samples`;
through a ``livegesture serve`` with ``remote``: :class:`EngineSamples`) -> argmax of the output
spike counts (ties go to the lower class, as ``numpy.argmax``; a silent net predicts class 0, as
the reference does). The accuracy is
the number to compare with published DVS Gesture accuracies.

Work is split by recording (a recording is read once per worker); a gesture that cannot
be a sample (no events, labels outside the recording, a class the model lacks) and a
recording that cannot be read are skipped and reported, never fatal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from livegesture.backends import BUILD_IMPORTS, Backend, Network, make_backend
from livegesture.events import SensorSize
from livegesture.evaluate.metrics import ClassScores
from livegesture.evaluate.pool import run_pool, start_fork_server
from livegesture.evaluate.recordings import (
    Gesture,
    Inventory,
    Skipped,
    describe_error,
    moved_segments,
    read_events_cached,
    usable_gestures,
)
from livegesture.geometry import integrate_field
from livegesture.integrate import CHANNELS, Frame
from livegesture.model.files import CriModel, ModelFileError, ModelInfo, load_model, sensor_mismatch
from livegesture.pipeline.engine import BACKEND_OPTIONS, make_engine, resolve_backend
from livegesture.pipeline.remote.protocol import RemoteError
from livegesture.pipeline.settings import PERIODIC, PipelineSettings
from livegesture.sources.labels import GestureSegment
from livegesture.sources.resets import OnReset, label_parts

if TYPE_CHECKING:  # imports torch: loaded only with a checkpoint
    from livegesture.evaluate.torch_model import TorchModel

TASKS_PER_WORKER = 2
"""A recording is split into chunks only while there are fewer than this many tasks per worker."""


@dataclass(frozen=True)
class SampleResult:
    """One labelled gesture's prediction; ``segment`` is its row in the label file."""

    recording: str
    segment: int
    label: int
    prediction: int
    counts: tuple[int, ...]
    events: int
    torch_prediction: int | None = None

    @property
    def correct(self) -> bool:
        return self.prediction == self.label

    def to_dict(self) -> dict[str, Any]:
        return {"recording": self.recording, "segment": self.segment, "label": self.label,
                "prediction": self.prediction, "counts": list(self.counts), "events": self.events,
                "torch_prediction": self.torch_prediction}


@dataclass(frozen=True)
class SampleTask:
    """Some labelled gestures of one recording (``rows`` of its label file, in ``parts`` of a
    recording with timestamp resets, handled as ``on_reset`` says)."""

    recording: Path
    rows: tuple[int, ...]
    segments: tuple[GestureSegment, ...]
    parts: tuple[int, ...] = ()
    on_reset: OnReset = "error"


@dataclass(frozen=True)
class TaskOutcome:
    results: tuple[SampleResult, ...]
    skipped: tuple[Skipped, ...]
    warning: str | None = None
    """Set when the recording's sensor is not the one the model was trained on."""

    @property
    def samples(self) -> int:
        """Labelled gestures this task accounted for."""
        return len(self.results) + sum(s.samples for s in self.skipped)


def plan_tasks(inventory: Inventory, workers: int) -> list[SampleTask]:
    """One task per recording, or per chunk of a recording while tasks are few."""
    chunks = max(1, -(-workers * TASKS_PER_WORKER // len(inventory.recordings)))
    tasks = []
    for recording in inventory.recordings:
        rows = list(range(len(recording.segments)))
        parts = label_parts(list(recording.segments))
        size = max(1, -(-len(rows) // chunks))
        for lo in range(0, len(rows), size):
            chosen = tuple(rows[lo:lo + size])
            tasks.append(SampleTask(recording.path, chosen, tuple(recording.segments[i] for i in chosen),
                                    tuple(parts[i] for i in chosen), inventory.on_reset))
    return tasks


def frame_size(model: CriModel) -> int:
    """Side of the square 2-channel frames the model's network takes."""
    shape = model.network.input_shape
    if shape is None or len(shape) != 3 or shape[0] != CHANNELS or shape[1] != shape[2]:
        raise ModelFileError(model.path, f"the network's input {shape} is not {CHANNELS} square channels of frames")
    return int(shape[1])


class EngineSamples:
    """The reference deployment of each sample through a pipeline engine (a remote server's):
    periodic windows of exactly one sample's frames plus the drain steps, and a clear before each
    sample, so that each window's output counts are :func:`~livegesture.backends.run_sample`'s
    (the periodic schedule's equivalence, :mod:`~livegesture.pipeline.engine`)."""

    def __init__(self, network: Network, info: ModelInfo, remote: str) -> None:
        self.num_outputs = network.num_outputs
        self.remote = remote
        self.engine = make_engine(network, PipelineSettings(
            remote=remote, mode=PERIODIC, clear_every=info.timesteps, drain_steps=info.drain_steps, smoothing=1,
            min_confidence=0.0, min_output_spikes=0, switch_margin=0.0, min_event_rate=0.0))

    def run_samples(self, samples: np.ndarray, drain_steps: int) -> np.ndarray:
        """The output spike counts ``(B, outputs)`` of each sample's frames (``drain_steps``: the
        model's, which the server's engine runs), as :meth:`~livegesture.backends.Backend.run_samples`."""
        return np.array([self._run(frames) for frames in samples], dtype=np.int64).reshape(len(samples),
                                                                                           self.num_outputs)

    def _run(self, frames: np.ndarray) -> np.ndarray:
        self.engine.reset()
        decisions = [d for k, frame in enumerate(frames) for d in self.engine.push(Frame(k, frame, 0, 0))]
        decisions += self.engine.flush()
        if len(decisions) != 1:
            raise RemoteError(f"{self.remote} did not answer for the whole sample: "
                              + "; ".join(self.engine.take_notices()))
        return decisions[0].counts


class SampleEvaluator:
    """Runs labelled gestures through one backend, or a server's engine (and optionally a
    checkpoint's torch model)."""

    def __init__(self, model: CriModel, backend: Backend | EngineSamples, torch_model: TorchModel | None = None,
                 roi: tuple[int, ...] = ()) -> None:
        self.model = model
        self.roi = roi
        self.backend = backend
        self.torch_model = torch_model
        self.out_size = frame_size(model)

    def evaluate(self, task: SampleTask) -> TaskOutcome:
        """The task's gestures; what cannot be evaluated is returned as skipped."""
        name = str(task.recording)
        try:
            recording = read_events_cached(task.recording, task.on_reset)
            segments = moved_segments(task.segments, task.parts, recording)
            gestures, skipped = usable_gestures(name, recording.events, task.rows, segments, self.backend.num_outputs)
            results = self._results(name, gestures, recording.sensor_size)
        except Exception as err:  # one bad file must not end the run: report it, go on
            return TaskOutcome((), (Skipped(name, describe_error(err), samples=len(task.rows)),))
        warning = sensor_mismatch(recording.sensor_size, self.model.info.sensor_size)
        return TaskOutcome(results, tuple(skipped), warning and f"{name}: {warning}")

    def _results(self, name: str, gestures: list[Gesture], sensor_size: SensorSize) -> tuple[SampleResult, ...]:
        """Each gesture's prediction; the backend steps them together where it can
        (:meth:`~livegesture.backends.Backend.run_samples`)."""
        info = self.model.info
        frames = np.array([integrate_field(g.events, info.timesteps, sensor_size, self.roi, self.out_size)
                           for g in gestures], dtype=np.uint8).reshape(len(gestures), info.timesteps,
                                                                      *self.model.network.input_shape)
        counts = self.backend.run_samples(frames, info.drain_steps)
        results = []
        for gesture, sample, sample_counts in zip(gestures, frames, counts):
            torch_prediction = None
            if self.torch_model is not None:
                torch_prediction = int(np.argmax(self.torch_model.counts(sample)))
            results.append(SampleResult(name, gesture.row, gesture.segment.label, int(np.argmax(sample_counts)),
                                        tuple(int(c) for c in sample_counts), len(gesture.events), torch_prediction))
        return tuple(results)


@dataclass(frozen=True)
class EvaluatorSpec:
    """What each worker loads: the model file, the backend (or a server's ``HOST:PORT``),
    optionally a training checkpoint, and the region of interest of larger sensors (``()``:
    centred; see :mod:`livegesture.geometry`)."""

    model: Path
    backend: str = "fast"
    checkpoint: Path | None = None
    roi: tuple[int, ...] = ()
    remote: str = ""

    @classmethod
    def of(cls, settings: PipelineSettings, checkpoint: str | None = None) -> EvaluatorSpec:
        """The spec of ``livegesture eval``'s settings (and ``--float-checkpoint``)."""
        return cls(Path(settings.model), resolve_backend(settings.backend), Path(checkpoint) if checkpoint else None,
                   settings.roi, settings.remote)

    @property
    def in_process(self) -> bool:
        """Whether the evaluation runs in this process, without workers or watchdog: on ``cri`` (one
        chip, driven from here) or through a server (which does the work)."""
        return self.backend == "cri" or bool(self.remote)

    @property
    def worker_modules(self) -> tuple[str, ...]:
        """The modules a worker imports to evaluate (the fork server's preload): this one, the
        backend's (torch only for ``fast``) and, with a checkpoint, torch's model."""
        checkpoint = ("livegesture.evaluate.torch_model",) if self.checkpoint is not None else ()
        return (__name__, *BUILD_IMPORTS.get(self.backend, ()), *checkpoint)

    def files(self) -> tuple[CriModel, TorchModel | None]:
        """The model and the checkpoint's torch model, checked to go together
        (:class:`ModelFileError` if not)."""
        model = load_model(self.model)
        frame_size(model)
        if self.checkpoint is None:
            return model, None
        from livegesture.evaluate.torch_model import load_torch_model

        torch_model = load_torch_model(self.checkpoint)
        if torch_model.timesteps != model.info.timesteps:
            raise ModelFileError(torch_model.path, f"trained on {torch_model.timesteps} frames per sample, the model "
                                                   f"{model.path} on {model.info.timesteps}")
        return model, torch_model

    def load(self) -> SampleEvaluator:
        model, torch_model = self.files()
        backend: Backend | EngineSamples
        if self.remote:
            backend = EngineSamples(model.network, model.info, self.remote)
        else:  # one torch thread, as in the live worker: the parallelism is the process pool
            backend = make_backend(self.backend, model.network, **BACKEND_OPTIONS.get(self.backend, {}))
        return SampleEvaluator(model, backend, torch_model, self.roi)


_loaded: tuple[EvaluatorSpec, SampleEvaluator] | None = None
"""This process's evaluator and what it was built from (by :func:`init_worker`)."""


def start_workers(spec: EvaluatorSpec, timeout_s: float | None) -> None:
    """Start the workers' fork server, importing :attr:`EvaluatorSpec.worker_modules`, when every task
    will run in a worker (a watchdog, ``timeout_s``, and not :attr:`EvaluatorSpec.in_process`): as early
    as possible, so that its start overlaps this process's own (``livegesture eval`` calls it right
    after reading its options; :func:`evaluate_samples` calls it again, a no-op then)."""
    if timeout_s is not None and not spec.in_process:
        start_fork_server(spec.worker_modules)


def init_worker(spec: EvaluatorSpec) -> SampleEvaluator:
    """Load the model and build the backend, once per process and spec."""
    global _loaded
    if _loaded is None or _loaded[0] != spec:
        _loaded = (spec, spec.load())
    return _loaded[1]


def evaluate_task(task: SampleTask) -> TaskOutcome:
    """A task on this process's evaluator (after :func:`init_worker`)."""
    assert _loaded is not None, "init_worker runs first"
    return _loaded[1].evaluate(task)


def merge_file_skips(skipped: list[Skipped]) -> list[Skipped]:
    """One entry per recording left out whole (its chunks may each have reported it), sorted."""
    whole: dict[tuple[str, str], int] = {}
    for s in skipped:
        if s.segment is None:
            whole[(s.recording, s.reason)] = whole.get((s.recording, s.reason), 0) + s.samples
    merged = [Skipped(name, reason, samples) for (name, reason), samples in whole.items()]
    merged += [s for s in skipped if s.segment is not None]
    return sorted(merged, key=lambda s: (s.recording, -1 if s.segment is None else s.segment))


@dataclass(frozen=True)
class SampleEvaluation:
    """The outcome of a per-sample evaluation (``results`` sorted by recording and row)."""

    source: str
    spec: EvaluatorSpec
    class_names: tuple[str, ...]
    timesteps: int
    drain_steps: int
    results: tuple[SampleResult, ...]
    skipped: tuple[Skipped, ...]
    not_run: int
    seconds: float
    training_accuracy: dict[str, Any] = field(default_factory=dict)
    torch_phase: str | None = None
    warnings: tuple[str, ...] = ()
    """Recordings whose sensor is not the one the model was trained on."""

    @property
    def scores(self) -> ClassScores:
        return ClassScores.of([r.label for r in self.results], [r.prediction for r in self.results],
                              len(self.class_names))

    @property
    def torch_scores(self) -> ClassScores | None:
        """Scores of the checkpoint's torch model on the same samples, if one was given."""
        if self.torch_phase is None:
            return None
        return ClassScores.of([r.label for r in self.results], [r.torch_prediction for r in self.results],
                              len(self.class_names))

    @property
    def silent(self) -> int:
        """Samples with no output spike at all (predicted class 0 by the argmax rule)."""
        return sum(not any(r.counts) for r in self.results)

    @property
    def skipped_samples(self) -> int:
        return sum(s.samples for s in self.skipped)

    @property
    def samples_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else 0.0

    def recordings(self) -> list[dict[str, Any]]:
        """Per recording: samples, correct, accuracy, skipped gestures."""
        names = sorted({r.recording for r in self.results} | {s.recording for s in self.skipped})
        rows = []
        for name in names:
            mine = [r for r in self.results if r.recording == name]
            correct = sum(r.correct for r in mine)
            rows.append({"recording": name, "samples": len(mine), "correct": correct,
                         "accuracy": correct / len(mine) if mine else None,
                         "skipped": sum(s.samples for s in self.skipped if s.recording == name)})
        return rows

    def to_dict(self) -> dict[str, Any]:
        scores = self.scores
        torch_scores = self.torch_scores
        return {
            "mode": "per-sample", "source": self.source, "model": str(self.spec.model), "backend": self.spec.backend,
            "timesteps": self.timesteps, "drain_steps": self.drain_steps, "class_names": list(self.class_names),
            "samples": scores.samples, "correct": scores.correct, "accuracy": scores.accuracy,
            "per_class": [{"class": name, "samples": int(n), "correct": int(c), "accuracy": a}
                          for name, n, c, a in zip(self.class_names, scores.class_samples, scores.class_correct,
                                                   scores.class_accuracy)],
            "confusion_matrix": scores.confusion.tolist(), "silent_samples": self.silent,
            "training_accuracy": self.training_accuracy,
            "torch_model": None if torch_scores is None else {
                "checkpoint": str(self.spec.checkpoint), "phase": self.torch_phase, "accuracy": torch_scores.accuracy,
                "confusion_matrix": torch_scores.confusion.tolist(),
                "agreement": float(np.mean([r.prediction == r.torch_prediction for r in self.results]))
                if self.results else None},
            "recordings": self.recordings(), "skipped": [s.to_dict() for s in self.skipped],
            "warnings": list(self.warnings),
            "skipped_samples": self.skipped_samples, "not_run": self.not_run, "interrupted": self.not_run > 0,
            "seconds": self.seconds, "samples_per_second": self.samples_per_second,
            "per_sample": [r.to_dict() for r in self.results],
        }


def evaluate_samples(inventory: Inventory, spec: EvaluatorSpec, *, workers: int = 1,
                     progress: Any = None, timeout_s: float | None = None) -> SampleEvaluation:
    """Evaluate every labelled gesture of ``inventory`` (see the module docstring).

    The model (and checkpoint) are loaded here first, so that a bad file fails before any
    worker starts; the backend is built here only when tasks may run here (no watchdog): with
    one, every task runs in a worker and this process needs no torch. ``progress`` (a tqdm
    bar, optional) advances by gestures. A task (a recording, or part of one) running longer
    than ``timeout_s`` is stopped and its gestures reported as skipped (not
    :attr:`~EvaluatorSpec.in_process`). Ctrl-C stops the run and returns what finished, with
    the number of gestures not run.
    """
    if spec.in_process:
        workers, timeout_s = 1, None
    start_workers(spec, timeout_s)
    if timeout_s is None:
        evaluator = init_worker(spec)
        model, torch_model = evaluator.model, evaluator.torch_model
    else:
        model, torch_model = spec.files()
    started = time.perf_counter()
    tasks = plan_tasks(inventory, workers)
    run = run_pool(evaluate_task, tasks, workers=workers, initializer=init_worker, initargs=(spec,),
                   on_result=None if progress is None else (lambda outcome: progress.update(outcome.samples)),
                   timeout_s=timeout_s, preload=spec.worker_modules)
    seconds = time.perf_counter() - started
    outcomes: list[TaskOutcome] = run.results
    results = sorted((r for o in outcomes for r in o.results), key=lambda r: (r.recording, r.segment))
    failed = [Skipped(str(task.recording), reason, samples=len(task.rows)) for task, reason in run.failed]
    skipped = list(inventory.skipped) + merge_file_skips([s for o in outcomes for s in o.skipped] + failed)
    info = model.info
    accuracy = info.training.get("accuracy") if isinstance(info.training.get("accuracy"), dict) else {}
    return SampleEvaluation(
        inventory.source, spec, info.class_names, info.timesteps, info.drain_steps, tuple(results), tuple(skipped),
        sum(len(task.rows) for task in run.unfinished), seconds,
        {key: accuracy[key] for key in ("split", "samples", "float", "integer") if key in accuracy},
        None if torch_model is None else torch_model.phase,
        tuple(sorted({o.warning for o in outcomes if o.warning})))
