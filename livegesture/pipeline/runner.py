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
from livegesture.events import LivegestureError, error_message
from livegesture.integrate import Frame
from livegesture.model.files import sensor_mismatch
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.engine import PredictionEngine, make_engine
from livegesture.pipeline.frames import FrameBuilder, check_roi
from livegesture.pipeline.queues import QueueClosed, StageQueue
from livegesture.pipeline.recent import RecentEvents
from livegesture.pipeline.recorder import Recorder
from livegesture.pipeline.settings import PipelineSettings
from livegesture.pipeline.stats import PipelineMeter, PipelineStats
from livegesture.pipeline.switch import RunningModel, update_engine
from livegesture.sources.base import EventSource
from livegesture.sources.replay import ReplaySource

EVENT_QUEUE_BATCHES = 64
"""Event batches between the source and the integrator thread. A replay slice holds at most
10 ms of events, so a paced live replay drops batches once the integrator is 0.64 s behind
(it integrates tens of millions of events/s: ``benchmarks/bench_integrate.py``)."""
FRAME_QUEUE_FRAMES = 4
"""Frames waiting for the worker. Live, the oldest is dropped beyond this, so a decision is at
most this many frames (plus the frame in the worker) behind the camera."""
DECISION_BACKLOG = 1_000
"""New decisions kept for the next :meth:`Pipeline.poll` (older ones are forgotten)."""
IDLE_WAIT_S = 0.05
"""Longest wait of a thread on an empty queue, so that settings changes are taken promptly."""
JOIN_TIMEOUT_S = 5.0
"""How long :meth:`Pipeline.stop` waits for all threads together."""


class _End:
    """Marks the end of a replay in the queues."""


END = _End()


@dataclass(frozen=True)
class PipelineUpdate:
    """What changed since the previous :meth:`Pipeline.poll`, and everything a display shows:
    the pipeline publishes, the display renders (it never asks the pipeline back)."""

    events: np.ndarray
    """Events handed over since the previous poll (at most about
    :data:`~livegesture.pipeline.recent.OVERLAY_EVENTS`, the newest)."""
    frame: Frame | None
    """The newest integrated frame."""
    decisions: tuple[Decision, ...]
    """New decisions since the previous poll, oldest first."""
    prediction: Decision | None
    """The latest decision (None before the first)."""
    stats: PipelineStats
    error: str | None
    """A stage's failure: the pipeline has stopped (repeated in every update)."""
    warning: str | None
    """Reported once: a settings change that could not be applied (the previous backend/model
    runs on), or a recording that failed (it ended; the pipeline goes on)."""
    finished: bool
    """The replay has ended and every frame was processed."""
    running: bool
    """Started, and not stopped, failed or finished."""
    paused: bool
    """A replay held by :meth:`Pipeline.pause`."""
    settings: PipelineSettings
    """The settings in force (see :attr:`Pipeline.settings`)."""
    switching: str | None
    """The backend or model being loaded (``backend fast-sparse``), None when there is none."""
    class_names: tuple[str, ...]
    """Names of the running model's outputs."""
    backend: str
    """The backend running (``auto`` resolved; empty until the worker has made its first engine)."""


class Pipeline:
    """Source -> integrator -> worker on three threads (see the module docstring).

    ``network`` is the net to run; None loads ``settings.model``. A recording that is not a
    :class:`ReplaySource` is wrapped in one paced at ``settings.speed``. The pipeline owns
    the source: :meth:`stop` closes it. ``class_names`` default to the model's (or
    :func:`~livegesture.pipeline.switch.default_class_names`). ``backend_options`` go to
    every backend made (see :class:`~livegesture.pipeline.engine.PredictionEngine`).
    """

    def __init__(self, source: EventSource, network: Network | None = None,
                 settings: PipelineSettings | None = None, *, class_names: Sequence[str] | None = None,
                 backend_options: dict[str, Any] | None = None) -> None:
        settings = settings or PipelineSettings()
        try:
            check_roi(settings.roi, source.sensor_size)
            model = (RunningModel.load(settings.model) if network is None
                     else RunningModel.of(network, settings.model, class_names))
        except BaseException:  # the pipeline owns the source, even when it cannot start
            source.close()
            raise
        if not source.live and not isinstance(source, ReplaySource):
            source = ReplaySource(source, speed=settings.replay_speed)
        elif isinstance(source, ReplaySource):
            source.speed = settings.replay_speed
        self.source = source
        self._backend_options = backend_options
        self._events: StageQueue[Any] = StageQueue(EVENT_QUEUE_BATCHES)
        self._frames: StageQueue[Any] = StageQueue(FRAME_QUEUE_FRAMES)
        self._wake_worker: Callable[[], None] = lambda: None
        """Called by the integrator after each frame: the worker's engine's ``wake`` (a remote
        engine's worker waits for answers and frames at once, in its socket's poll)."""
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._engine_ready = threading.Event()
        """Set once the worker has its engine (or failed): the source waits for it, so that
        a slow backend start does not make a live replay drop its first frames."""
        # what the user asked for, and what the worker runs (written by the worker only)
        self._requested = settings
        self._request = 0
        """Counts the backend/model changes asked for (a refused one is dropped unless a newer one came)."""
        self._model = model
        self._running_backend, self._running_remote = settings.backend, settings.remote
        self._backend = ""
        # what the threads publish for poll()
        self._stopped = False
        self._finished = False
        self._fatal: str | None = None
        self._warning = sensor_mismatch(source.sensor_size, model.sensor_size) if model.sensor_size else None
        """For the next poll (once); the first says when the source's sensor is not the one the model was trained on."""
        self._recorder: Recorder | None = None
        self._recent = RecentEvents()
        self._meter = PipelineMeter()
        self._frame: Frame | None = None
        self._pending_events = 0
        self._new_decisions: deque[Decision] = deque(maxlen=DECISION_BACKLOG)
        self._prediction: Decision | None = None
        self._handed_over: deque[tuple[int, float]] = deque(maxlen=DECISION_BACKLOG)
        """(index, hand-over time) of the frames pushed and not yet decided, oldest first (a
        remote engine answers for a frame some pushes later); the worker's alone."""
        self._lost_counted = 0
        """The running engine's ``frames_lost`` already counted in the stats; the worker's alone."""

    # -- control (any thread) ----------------------------------------------------------------

    @property
    def settings(self) -> PipelineSettings:
        """The settings in force: those asked for, with the backend, model and remote server the
        worker runs (one being loaded is not in force yet; a refused one never is)."""
        with self._lock:
            return self._in_force()

    def _in_force(self) -> PipelineSettings:
        return self._requested.replace(backend=self._running_backend, model=self._model.path,
                                       remote=self._running_remote)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the running model's outputs."""
        with self._lock:
            return self._model.class_names

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

        ``speed`` acts at once; ``events_per_frame``, ``frames_per_window``, the noise
        filter's settings and ``roi`` (checked against the sensor here) rebuild the integrator
        at the next batch (its partial frame is dropped); the schedule and prediction settings restart the engine with a clear at the
        next frame; ``backend``, ``model`` or ``remote`` make a new engine there (a failure is reported by
        :meth:`poll`, the previous one stays and the request is dropped). ``lossless``
        applies to the next queue put. Returns the settings asked for.
        """
        if "roi" in changes:
            check_roi(changes["roi"], self.source.sensor_size)
        with self._lock:
            self._requested = settings = self._requested.replace(**changes)
            self._request += bool({"backend", "model", "remote"} & changes.keys())
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
                needed = self._requested.events_per_frame - self._pending_events
            self.replay.step(needed)

    def poll(self) -> PipelineUpdate:
        """What happened since the previous call; never blocks on the pipeline's work."""
        stats = self._meter.snapshot(time.perf_counter(), len(self._events), len(self._frames))
        events = self._recent.take()
        paused = self.paused
        with self._lock:
            decisions = tuple(self._new_decisions)
            self._new_decisions.clear()
            warning, self._warning = self._warning, None
            settings = self._in_force()
            switching = None
            if self._requested.model != settings.model:
                switching = f"model {Path(self._requested.model).name}"
            elif self._requested.remote and self._requested.remote != settings.remote:
                switching = f"remote {self._requested.remote}"
            elif (self._requested.backend, self._requested.remote) != (settings.backend, settings.remote):
                switching = f"backend {self._requested.backend}"
            return PipelineUpdate(
                events=events, frame=self._frame, decisions=decisions, prediction=self._prediction, stats=stats,
                error=self._fatal, warning=warning, finished=self._finished,
                running=bool(self._threads) and not (self._stopped or self._finished or self._fatal),
                paused=paused, settings=settings, switching=switching,
                class_names=self._model.class_names, backend=self._backend)

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
            self._meter.batch_in(len(batch))
            self._recent.add(batch)
            with self._lock:
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
            self._meter.batch_dropped(len(dropped[0]))

    def _put_frame(self, item: Any) -> None:
        if self._frames.put(item, block=self._lossless()) is not None:
            self._meter.frame_dropped()
        self._wake_worker()

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
            self._meter.integrated(len(frames), builder.events_integrated, builder.filter_kept)
            with self._lock:
                self._pending_events = builder.pending_events
                self._frame = frames[-1] if frames else self._frame
            for frame in frames:
                self._put_frame((frame, handed_over))

    def _work(self) -> None:
        """Worker thread: frames -> engine -> published decisions."""
        try:
            engine = make_engine(self._model.network, self.settings, backend_options=self._backend_options)
            with self._lock:
                self._backend = engine.backend_name
        finally:
            self._engine_ready.set()
        try:
            while True:
                item = self._frames.get(0.0 if engine.awaiting_answers else IDLE_WAIT_S)
                engine = self._updated(engine)  # settings changed before this frame apply to it
                self._wake_worker = engine.wake
                if item is None:
                    if engine.awaiting_answers:  # until an answer, or a frame (wake), arrives
                        self._publish(engine, engine.take_answers(IDLE_WAIT_S), stepped=0)
                    continue
                if item is END:  # what is still on its way, each decision published as it arrives
                    while engine.awaiting_answers:
                        self._publish(engine, engine.take_answers(IDLE_WAIT_S), stepped=0)
                    with self._lock:
                        self._finished = True
                    return
                frame, handed_over = item
                self._handed_over.append((frame.index, handed_over))
                self._publish(engine, engine.push(frame), stepped=1)
        finally:
            engine.close()

    def _publish(self, engine: PredictionEngine, decisions: list[Decision], stepped: int) -> None:
        """Worker thread: hand decisions (and the engine's notices and figures) to :meth:`poll`.
        A decision's latency runs from the hand-over of its last frame (a remote engine answers
        for a frame some pushes later, so it is looked up by index)."""
        published = time.perf_counter()
        stats = engine.step_stats
        notices = engine.take_notices()
        latencies = []
        for decision in decisions:  # in frame order
            while self._handed_over and self._handed_over[0][0] < decision.frame_index:
                self._handed_over.popleft()
            if self._handed_over and self._handed_over[0][0] == decision.frame_index:
                latencies.append(published - self._handed_over[0][1])
        self._meter.stepped(stepped, len(decisions), published, latencies, stats.mean_step_ms, stats.mean_frame_ms,
                            lost=stats.frames_lost - self._lost_counted)
        self._lost_counted = stats.frames_lost
        with self._lock:
            self._new_decisions.extend(decisions)
            self._prediction = decisions[-1] if decisions else self._prediction
            if notices:
                self._warning = error_message("remote", LivegestureError("; ".join(notices)))

    def _updated(self, engine: PredictionEngine) -> PredictionEngine:
        """``engine`` brought up to the settings asked for (see
        :func:`~livegesture.pipeline.switch.update_engine`); what runs is published."""
        with self._lock:
            wanted, request, model = self._requested, self._request, self._model
        result = update_engine(engine, model, wanted, self._backend_options)
        if result.engine is not engine:
            self._lost_counted = 0
        with self._lock:
            self._model, self._running_backend = result.model, result.engine.settings.backend
            self._running_remote = result.engine.settings.remote
            self._backend = result.engine.backend_name
            if result.error is not None:
                self._warning = result.error
                if self._request == request:  # nothing newer was asked for: the refused request is dropped
                    self._requested = self._in_force()
        return result.engine
