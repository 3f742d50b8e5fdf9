"""The live pipeline: source, integrator and hardware worker on their own threads.

::

    source thread --(event batches)--> integrator thread --(frames)--> worker thread --> decisions
       camera / replay   EVENT_QUEUE_BATCHES   noise filter + sliding   FRAME_QUEUE_FRAMES   engine

Both queues are bounded (:class:`~livegesture.pipeline.queues.StageQueue`). **Live** (a
camera, or a replay without ``lossless``) a full queue drops its OLDEST item, counted in the
stats, so the pipeline never falls behind the camera by more than the queues hold. Dropped
frames are not stepped and do not count in the window schedule (see
:mod:`~livegesture.pipeline.engine`): a window is always ``clear_every`` frames the network
saw. **Lossless** (a replay with ``lossless``, or a paused replay being stepped) the producers
wait for room instead: every event is integrated exactly once, in order, and the decisions are
those of :func:`~livegesture.pipeline.engine.decide_stream`; memory stays flat all the same.

Nothing here touches Qt: a window drives the pipeline by calling :meth:`Pipeline.poll`
(non-blocking) from a timer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from livegesture.backends import Network
from livegesture.events import LivegestureError, empty_events
from livegesture.integrate import Frame
from livegesture.model.files import load_model
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.engine import PredictionEngine, engine_settings, make_engine
from livegesture.pipeline.frames import FrameBuilder
from livegesture.pipeline.queues import QueueClosed, StageQueue
from livegesture.pipeline.recorder import Recorder
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources.base import EventSource
from livegesture.sources.labels import CLASS_NAMES
from livegesture.sources.replay import ReplaySource

EVENT_QUEUE_BATCHES = 64
"""Event batches between the source and the integrator thread. A replay slice holds at most
10 ms of events, so a paced live replay drops batches once the integrator is 0.64 s behind
(it integrates tens of millions of events/s: ``benchmarks/bench_integrate.py``)."""
FRAME_QUEUE_FRAMES = 4
"""Frames waiting for the worker. Live, the oldest is dropped beyond this, so a decision is at
most this many frames (plus the frame in the worker) behind the camera."""
OVERLAY_EVENTS = 100_000
"""Most recent events kept for :meth:`Pipeline.poll`'s overlay (older ones are forgotten)."""
DECISION_BACKLOG = 1_000
"""New decisions kept for the next :meth:`Pipeline.poll` (older ones are forgotten)."""
LATENCY_WINDOW = 100
"""Recent decisions over which the latency mean and 95th percentile are taken."""
RATE_WINDOW_S = 2.0
"""Wall-clock span over which events/s and frames/s are measured."""
IDLE_WAIT_S = 0.05
"""Longest wait of a thread on an empty queue, so that settings changes are taken promptly."""
ANSWER_WAIT_S = 0.002
"""Longest wait of the worker on its frame queue while a remote engine's answers are due, so
that a decision is published as soon as it arrives, not with the next frame."""
JOIN_TIMEOUT_S = 5.0
"""How long :meth:`Pipeline.stop` waits for all threads together."""


class _End:
    """Marks the end of a replay in the queues."""


END = _End()


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """DVS Gesture's names for an 11-output net, else ``class 0``, ``class 1``, ..."""
    return CLASS_NAMES if num_classes == len(CLASS_NAMES) else tuple(f"class {k}" for k in range(num_classes))


def error_message(stage: str, err: BaseException) -> str:
    """A one-line message for a failure in ``stage``: a user-facing error as it is, others with their type."""
    text = str(err) if isinstance(err, LivegestureError) else f"{type(err).__name__}: {err}"
    return f"{stage}: {text}"


class RateMeter:
    """Rate of a growing counter, measured over the last ``window_s`` seconds of samples."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, count: int) -> float:
        """Record ``count`` at time ``now``; the rate since the oldest sample in the window."""
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        then, before = self._samples[0]
        return (count - before) / (now - then) if now > then else 0.0


@dataclass(frozen=True)
class PipelineStats:
    """A snapshot of the pipeline's figures."""

    events_per_s: float
    """Events handed over by the source, per second of wall time (last :data:`RATE_WINDOW_S`)."""
    frames_per_s: float
    """Frames integrated per second."""
    step_ms: float
    """Mean wall time of one backend step (recent steps)."""
    frame_ms: float
    """Mean worker time per frame: every instance's step, drain steps and decisions (recent frames)."""
    latency_ms_mean: float
    """From the hand-over of the batch that completed a window's last frame to the decision
    being published; mean over the last :data:`LATENCY_WINDOW` decisions (0 before the first)."""
    latency_ms_p95: float
    events_in: int
    """Events handed over by the source."""
    events_integrated: int
    """Events integrated (after the noise filter)."""
    frames: int
    """Frames integrated."""
    frames_stepped: int
    """Frames the network stepped."""
    decisions: int
    dropped_frames: int
    dropped_batches: int
    dropped_events: int
    """Events of the dropped batches."""
    lost_frames: int
    """Frames a remote engine lost when its link broke (in flight, or sent while reconnecting)."""
    event_queue_depth: int
    frame_queue_depth: int

    def figures(self) -> str:
        """One line of the figures, for a terminal or a status bar."""
        return (f"{self.events_per_s:>9,.0f} events/s  {self.frames_per_s:5.1f} frames/s  step {self.step_ms:.2f} ms  "
                f"latency {self.latency_ms_mean:.1f} ms (p95 {self.latency_ms_p95:.1f})  "
                f"dropped {self.dropped_frames:,} frames, {self.dropped_events:,} events"
                + (f", lost {self.lost_frames:,} frames" if self.lost_frames else ""))


@dataclass(frozen=True)
class PipelineUpdate:
    """What changed since the previous :meth:`Pipeline.poll`."""

    events: np.ndarray
    """Events handed over since the previous poll (at most about :data:`OVERLAY_EVENTS`, the newest)."""
    frame: Frame | None
    """The newest integrated frame."""
    decisions: tuple[Decision, ...]
    """New decisions since the previous poll, oldest first."""
    prediction: Decision | None
    """The latest decision (None before the first)."""
    stats: PipelineStats
    error: str | None
    """A stage's failure (the pipeline has stopped; repeated in every update), or, reported once,
    a settings change that could not be applied (the previous backend/model stays) or a
    recording that failed (it ended; the pipeline goes on)."""
    finished: bool
    """The replay has ended and every frame was processed."""
    running: bool
    """Started, and not stopped, failed or finished."""


class Pipeline:
    """Source -> integrator -> worker on three threads (see the module docstring).

    ``network`` is the net to run; None loads ``settings.model``. A recording that is not a
    :class:`ReplaySource` is wrapped in one paced at ``settings.speed``. The pipeline owns
    the source: :meth:`stop` closes it. ``class_names`` default to the model's (or
    :func:`default_class_names`). ``backend_options`` go to every backend made (see
    :class:`~livegesture.pipeline.engine.PredictionEngine`).
    """

    def __init__(self, source: EventSource, network: Network | None = None,
                 settings: PipelineSettings | None = None, *, class_names: Sequence[str] | None = None,
                 backend_options: dict[str, Any] | None = None) -> None:
        settings = settings or PipelineSettings()
        if network is None:
            try:
                model = load_model(settings.model)
            except BaseException:  # the pipeline owns the source, even when it cannot start
                source.close()
                raise
            network, class_names = model.network, class_names or model.info.class_names
        if not source.live and not isinstance(source, ReplaySource):
            source = ReplaySource(source, speed=settings.replay_speed)
        elif isinstance(source, ReplaySource):
            source.speed = settings.replay_speed
        self.source = source
        self._settings = settings
        self._network = network
        self._model = settings.model
        self._class_names = tuple(class_names or default_class_names(network.num_outputs))
        self._backend_options = backend_options
        self._events: StageQueue[Any] = StageQueue(EVENT_QUEUE_BATCHES)
        self._frames: StageQueue[Any] = StageQueue(FRAME_QUEUE_FRAMES)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._engine_ready = threading.Event()
        """Set once the worker has its engine (or failed): the source waits for it, so that
        a slow backend start does not make a live replay drop its first frames."""
        self._stopped = False
        self._finished = False
        self._fatal: str | None = None
        self._warning: str | None = None
        self._recorder: Recorder | None = None
        self._overlay: deque[np.ndarray] = deque()
        self._overlay_size = 0
        self._frame: Frame | None = None
        self._pending_events = 0
        self._new_decisions: deque[Decision] = deque(maxlen=DECISION_BACKLOG)
        self._prediction: Decision | None = None
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._handed_over: deque[tuple[int, float]] = deque(maxlen=DECISION_BACKLOG)
        """(index, hand-over time) of the frames pushed and not yet decided, oldest first (a
        remote engine answers for a frame some pushes later)."""
        self._counts = {"events_in": 0, "events_integrated": 0, "frames": 0, "frames_stepped": 0, "decisions": 0,
                        "dropped_frames": 0, "dropped_batches": 0, "dropped_events": 0, "lost_frames": 0}
        self._step_ms = self._frame_ms = 0.0
        self._event_rate, self._frame_rate = RateMeter(), RateMeter()

    # -- control (any thread) ----------------------------------------------------------------

    @property
    def settings(self) -> PipelineSettings:
        """The settings in force (a rejected backend or model change is reverted here)."""
        with self._lock:
            return self._settings

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the running model's outputs."""
        with self._lock:
            return self._class_names

    @property
    def replay(self) -> ReplaySource | None:
        return self.source if isinstance(self.source, ReplaySource) else None

    def start(self) -> Pipeline:
        """Start the three threads."""
        if self._threads:
            raise RuntimeError("the pipeline was already started")
        for name, body in (("source", self._read), ("integrator", self._integrate), ("worker", self._work)):
            thread = threading.Thread(target=self._run_stage, args=(name, body), name=f"livegesture {name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop every thread (also when a queue is full or the source waits), close the source
        and finalise a recording; True when all threads ended within ``timeout``. Idempotent."""
        with self._lock:
            self._stopped = True
        self._shut_down()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self.stop_recording()
        return not any(thread.is_alive() for thread in self._threads)

    @property
    def recorder(self) -> Recorder | None:
        """The recording in progress, if any (mark gestures with its ``begin`` / ``end``)."""
        with self._lock:
            return self._recorder

    def start_recording(self, path: str | Path) -> Recorder:
        """Write every batch the source hands over from now on to ``path`` (aedat4), the
        gestures marked on the returned recorder to its ``_labels.csv`` (see :class:`Recorder`)."""
        recorder = Recorder(path, self.source.sensor_size)
        with self._lock:
            previous, self._recorder = self._recorder, recorder
        if previous is not None:
            previous.close()
        return recorder

    def stop_recording(self) -> Recorder | None:
        """Finalise the recording in progress (file and labels); it, or None if there was none."""
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.close()
        return recorder

    def update_settings(self, **changes: Any) -> PipelineSettings:
        """Change settings while running; a bad value raises :class:`SettingsError` here.

        ``speed`` acts at once; ``events_per_frame``, ``frames_per_window`` and
        ``noise_filter`` rebuild the integrator at the next batch (its partial frame is
        dropped); the schedule and prediction settings restart the engine with a clear at the
        next frame; ``backend`` or ``model`` make a new engine there (a failure is reported by
        :meth:`poll` and the previous one stays). ``lossless`` applies to the next queue put.
        """
        with self._lock:
            self._settings = self._settings.replace(**changes)
            settings = self._settings
        if self.replay is not None and "speed" in changes:
            self.replay.speed = settings.replay_speed
        return settings

    def pause(self) -> None:
        """Pause a replay (no effect on a camera)."""
        if self.replay is not None:
            self.replay.pause()

    def resume(self) -> None:
        if self.replay is not None:
            self.replay.resume()

    @property
    def paused(self) -> bool:
        return self.replay is not None and self.replay.paused

    def step(self) -> None:
        """While a replay is paused, release the events that complete the next frame (whole
        replay slices, so a little more; with the noise filter on it may take two steps)."""
        if self.replay is not None:
            with self._lock:
                needed = self._settings.events_per_frame - self._pending_events
            self.replay.step(needed)

    def poll(self) -> PipelineUpdate:
        """What happened since the previous call; never blocks on the pipeline's work."""
        now = time.perf_counter()
        with self._lock:
            events = np.concatenate(self._overlay) if self._overlay else empty_events()
            self._overlay.clear()
            self._overlay_size = 0
            decisions = tuple(self._new_decisions)
            self._new_decisions.clear()
            error = self._fatal or self._warning
            self._warning = None
            counts = dict(self._counts)
            latencies = np.array(self._latencies) * 1e3
            update = dict(frame=self._frame, prediction=self._prediction, finished=self._finished,
                          running=bool(self._threads) and not (self._stopped or self._finished or self._fatal))
            step_ms, frame_ms = self._step_ms, self._frame_ms
        stats = PipelineStats(
            events_per_s=self._event_rate.update(now, counts["events_in"]),
            frames_per_s=self._frame_rate.update(now, counts["frames"]),
            step_ms=step_ms, frame_ms=frame_ms,
            latency_ms_mean=float(latencies.mean()) if latencies.size else 0.0,
            latency_ms_p95=float(np.percentile(latencies, 95)) if latencies.size else 0.0,
            event_queue_depth=len(self._events), frame_queue_depth=len(self._frames), **counts)
        return PipelineUpdate(events=events, decisions=decisions, stats=stats, error=error, **update)

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the stages (their own threads) ------------------------------------------------------

    def _lossless(self) -> bool:
        """Producers wait rather than drop: a replay with ``lossless`` set, or a paused one (its
        steps release a frame's events in one burst of slices, which must all arrive)."""
        return not self.source.live and (self.settings.lossless or self.paused)

    def _run_stage(self, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except QueueClosed:
            pass
        except Exception as err:  # any failure of a stage stops the pipeline with its message
            with self._lock:
                self._fatal = self._fatal or error_message(name, err)
            self._shut_down()

    def _shut_down(self) -> None:
        """Wake and end every thread: close the source and both queues."""
        self.source.close()
        self._events.close()
        self._frames.close()

    def _read(self) -> None:
        """Source thread: hand every batch over, stamped with the wall time of the hand-over."""
        while not self._engine_ready.wait(IDLE_WAIT_S):
            if self._events.closed:
                return
        for batch in self.source:
            if not len(batch):
                continue
            with self._lock:
                self._counts["events_in"] += len(batch)
                self._overlay.append(batch)
                self._overlay_size += len(batch)
                while self._overlay_size - len(self._overlay[0]) >= OVERLAY_EVENTS:
                    self._overlay_size -= len(self._overlay.popleft())
                recorder = self._recorder
            if recorder is not None:
                self._record(recorder, batch)
            self._put_batch((batch, time.perf_counter()))
        self._put_batch(END)

    def _record(self, recorder: Recorder, batch: np.ndarray) -> None:
        """Write to the recording; a failure (disk full...) ends the recording, not the pipeline."""
        try:
            recorder.write(batch)
        except (LivegestureError, OSError) as err:
            with self._lock:
                self._warning = error_message("recording", err)
                self._recorder = None if self._recorder is recorder else self._recorder

    def _put_batch(self, item: Any) -> None:
        dropped = self._events.put(item, block=self._lossless())
        if dropped is not None:
            with self._lock:
                self._counts["dropped_batches"] += 1
                self._counts["dropped_events"] += len(dropped[0])

    def _put_frame(self, item: Any) -> None:
        if self._frames.put(item, block=self._lossless()) is not None:
            with self._lock:
                self._counts["dropped_frames"] += 1

    def _integrate(self) -> None:
        """Integrator thread: batches -> frames, each stamped with its batch's hand-over time."""
        builder = FrameBuilder(self.source.sensor_size, self.settings)
        while True:
            item = self._events.get(IDLE_WAIT_S)
            if item is None:
                continue
            if item is END:
                self._put_frame(END)
                return
            batch, handed_over = item
            builder = builder.rebuilt(self.settings)  # settings changed before this batch apply to it
            frames = builder.push(batch)
            with self._lock:
                self._counts["events_integrated"] = builder.events_integrated
                self._counts["frames"] += len(frames)
                self._pending_events = builder.pending_events
                self._frame = frames[-1] if frames else self._frame
            for frame in frames:
                self._put_frame((frame, handed_over))

    def _work(self) -> None:
        """Worker thread: frames -> engine -> published decisions."""
        try:
            engine = make_engine(self._network, self.settings, backend_options=self._backend_options)
        finally:
            self._engine_ready.set()
        try:
            while True:
                item = self._frames.get(ANSWER_WAIT_S if engine.awaiting_answers else IDLE_WAIT_S)
                engine = self._current_engine(engine)  # settings changed before this frame apply to it
                if item is None:
                    if engine.awaiting_answers:
                        self._publish(engine, engine.take_answers(), stepped=0)
                    continue
                if item is END:
                    self._publish(engine, engine.flush(), stepped=0)
                    with self._lock:
                        self._finished = True
                    return
                frame, handed_over = item
                self._handed_over.append((frame.index, handed_over))
                self._publish(engine, engine.push(frame), stepped=1)
        finally:
            engine.close()

    def _publish(self, engine: PredictionEngine, decisions: list[Decision], stepped: int) -> None:
        """Worker thread: hand decisions (and the engine's notices and figures) to :meth:`poll`."""
        published = time.perf_counter()
        stats = engine.step_stats
        notices = engine.take_notices()
        with self._lock:
            self._new_decisions.extend(decisions)
            self._prediction = decisions[-1] if decisions else self._prediction
            for decision in decisions:  # in frame order
                while self._handed_over and self._handed_over[0][0] < decision.frame_index:
                    self._handed_over.popleft()
                if self._handed_over and self._handed_over[0][0] == decision.frame_index:
                    self._latencies.append(published - self._handed_over[0][1])
            self._counts["frames_stepped"] += stepped - (stats.frames_lost - self._counts["lost_frames"])
            self._counts["lost_frames"] = stats.frames_lost
            self._counts["decisions"] += len(decisions)
            self._step_ms, self._frame_ms = stats.mean_step_ms, stats.mean_frame_ms
            if notices:
                self._warning = error_message("remote", LivegestureError("; ".join(notices)))

    def _current_engine(self, engine: PredictionEngine) -> PredictionEngine:
        """``engine`` brought up to the settings: reconfigured, or replaced for another backend,
        model or remote server; a replacement that fails is reported and its settings reverted."""
        settings = self.settings
        if (settings.backend, settings.model, settings.remote) == (engine.settings.backend, self._model,
                                                                   engine.settings.remote):
            if engine_settings(settings) != engine_settings(engine.settings):
                engine.reconfigure(settings)
            return engine
        try:
            if settings.model == self._model:
                network, names = self._network, self._class_names
            else:
                model = load_model(settings.model)
                network, names = model.network, model.info.class_names
            fresh = make_engine(network, settings, backend_options=self._backend_options)
        except Exception as err:  # a bad model file, a backend this machine lacks: keep the running one
            with self._lock:
                self._warning = error_message("settings", err)
                self._settings = self._settings.replace(backend=engine.settings.backend, model=self._model,
                                                        remote=engine.settings.remote)
            return self._current_engine(engine)
        engine.close()
        with self._lock:
            self._network, self._model, self._class_names = network, settings.model, tuple(names)
        return fresh
