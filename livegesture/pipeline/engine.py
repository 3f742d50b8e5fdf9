"""Frames -> decisions: the network stepped one frame per timestep, membranes cleared periodically.

**Periodic mode** is the reference deployment run back to back: after a clear, ``clear_every``
frames are stepped, one per timestep, then ``drain_steps`` empty steps let the last frames'
spikes reach the outputs; the output spike counts of all those steps are the window's counts
(one :class:`~livegesture.pipeline.decision.Decision`), then the membranes are cleared. So
decision ``k`` of a stream equals ``run_sample(backend, frames[k*C:(k+1)*C], drain_steps)``
with ``C = clear_every``: the net sees exactly what it was trained on. Trade-off: one decision
per ``C`` frames, and the drain steps cost time (no frame is stepped meanwhile).

**Staggered mode** runs two instances of the network; the second starts ``C // 2`` frames
after the first, every frame goes to both, and each clears after its own windows, so a fresh
decision comes twice as often (every ``C / 2`` frames), still each on a full reference window.
Trade-off: twice the hardware work per frame, and on CRI two network instances (two cores).

**Quiet scenes.** A gesture makes events fast; a person standing still makes few. A frame that
filled at fewer than ``min_event_rate`` events per second is *quiet*: a window ending on a quiet
frame decides "no gesture" whatever its counts, and when the scene falls quiet between windows
(a quiet frame after a busy one) a "no gesture" decision is made at once, so the prediction
shown does not outlive the motion by a whole window (which in a quiet scene takes seconds to fill).

The schedule counts frames *stepped*: a frame the live pipeline dropped is not in any window.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livegesture.backends import Backend, Network, StepInput, default_backend_name, make_backend
from livegesture.events import SensorSize
from livegesture.integrate import Frame
from livegesture.pipeline.decision import Decision, RunningPrediction
from livegesture.pipeline.frames import FrameBuilder
from livegesture.pipeline.settings import AUTO_BACKEND, STAGGERED, PipelineSettings

US_PER_S = 1_000_000
STEP_TIME_WINDOW = 256
"""Recent steps (and frames) over which the mean step time is taken."""
BACKEND_OPTIONS: dict[str, dict[str, Any]] = {"fast": {"threads": 1}}
"""Options each backend gets by default: one torch thread, so the worker leaves the other
threads (source, integrator, GUI) a core."""


def resolve_backend(name: str) -> str:
    """A backend name with ``auto`` replaced by ``cri`` on a CRI host, else ``fast``."""
    return default_backend_name() if name == AUTO_BACKEND else name


ENGINE_SETTINGS = ("clear_every", "drain_steps", "mode", "smoothing", "min_confidence", "min_output_spikes",
                   "switch_margin", "min_event_rate", "events_per_frame")
"""The settings the engine's schedule and prediction depend on."""


def backend_label(settings: PipelineSettings) -> str:
    """What steps the network, for the terminal and reports: the backend, or ``remote HOST:PORT``."""
    return f"remote {settings.remote}" if settings.remote else resolve_backend(settings.backend)


def engine_settings(settings: PipelineSettings) -> tuple[Any, ...]:
    """The values of :data:`ENGINE_SETTINGS`: a change restarts the engine."""
    return tuple(getattr(settings, name) for name in ENGINE_SETTINGS)


@dataclass(frozen=True)
class StepStats:
    """What the engine has done since it was made."""

    frames: int
    """Frames pushed (stepped)."""
    steps: int
    """Backend steps, drain steps included, all instances together."""
    clears: int
    """Membrane clears (one per window and instance, plus restarts)."""
    decisions: int
    mean_step_ms: float
    """Mean wall time of one backend step over the last :data:`STEP_TIME_WINDOW` steps."""
    mean_frame_ms: float
    """Mean wall time to handle one frame (its steps in every instance, any drain steps and
    decision) over the last :data:`STEP_TIME_WINDOW` frames: what bounds the frame rate."""
    frames_lost: int = 0
    """Frames pushed that were never stepped (a remote engine's link broke while they were in flight)."""


@dataclass
class _Lane:
    """One network instance and its window in progress."""

    backend: Backend
    start_after: int
    """Frames of the schedule that pass before this instance steps its first one."""
    counts: np.ndarray
    stepped: int = 0
    """Frames stepped in the current window."""


@dataclass
class _Timings:
    steps: deque[float] = field(default_factory=lambda: deque(maxlen=STEP_TIME_WINDOW))
    frames: deque[float] = field(default_factory=lambda: deque(maxlen=STEP_TIME_WINDOW))


def _mean_ms(seconds: Iterable[float]) -> float:
    values = list(seconds)
    return 1e3 * sum(values) / len(values) if values else 0.0


class PredictionEngine:
    """Steps a network frame by frame and makes decisions (see the module docstring).

    ``push`` is synchronous and deterministic. The backend(s) come from
    ``make_backend(settings.backend, network, **options)``, with ``backend_options`` or
    :data:`BACKEND_OPTIONS`; one instance in periodic mode, two in staggered mode.
    """

    def __init__(self, network: Network, settings: PipelineSettings, *,
                 backend_options: dict[str, Any] | None = None) -> None:
        self.network = network
        self.backend_name = resolve_backend(settings.backend)
        self._options = BACKEND_OPTIONS.get(self.backend_name, {}) if backend_options is None else backend_options
        self._lanes: list[_Lane] = []
        self._timings = _Timings()
        self._counters = {"frames": 0, "steps": 0, "clears": 0, "decisions": 0}
        try:
            self.reconfigure(settings)
        except BaseException:
            self.close()
            raise

    @property
    def settings(self) -> PipelineSettings:
        return self._settings

    @property
    def instances(self) -> int:
        """Network instances running: 1 (periodic) or 2 (staggered)."""
        return len(self._lanes)

    @property
    def step_stats(self) -> StepStats:
        return StepStats(**self._counters, mean_step_ms=_mean_ms(self._timings.steps),
                         mean_frame_ms=_mean_ms(self._timings.frames))

    @property
    def median_frame_ms(self) -> float:
        """The median time of the recent frames' pushes: what a frame typically costs, which a
        slow first call does not sway as it does the mean."""
        # statistics' sort of 256 floats: a seventh of numpy's median of a deque (asked on every answer of serve)
        return 1e3 * statistics.median(self._timings.frames) if self._timings.frames else 0.0

    @property
    def backend_counters(self) -> dict[str, int]:
        """Every instance's backend ``stats`` summed (clock cycles and HBM accesses on CRI)."""
        total: dict[str, int] = {}
        for lane in self._lanes:
            for name, value in lane.backend.stats.items():
                total[name] = total.get(name, 0) + value
        return total

    def flush(self) -> list[Decision]:
        """Decisions still on their way (none here: :meth:`push` is synchronous)."""
        return []

    @property
    def awaiting_answers(self) -> bool:
        """Decisions may arrive without a push (never here)."""
        return False

    def take_answers(self, wait_s: float = 0.0) -> list[Decision]:
        """Decisions that arrived since the last call, waiting up to ``wait_s`` for one while
        some are on their way, or until :meth:`wake` (none here)."""
        return []

    def wake(self) -> None:
        """End a :meth:`take_answers` wait now (from any thread: a frame is ready); nothing waits here."""

    def take_notices(self) -> list[str]:
        """Messages for the user since the previous call (none here)."""
        return []

    def reconfigure(self, settings: PipelineSettings) -> None:
        """Take new schedule/prediction settings and restart with a clear. The backend stays:
        for another backend (or network) make a new engine."""
        if resolve_backend(settings.backend) != self.backend_name:
            raise ValueError(f"the engine runs backend {self.backend_name}; make a new engine for "
                             f"{settings.backend}")
        self._settings = settings
        wanted = 2 if settings.mode == STAGGERED else 1
        while len(self._lanes) > wanted:
            self._lanes.pop().backend.close()
        while len(self._lanes) < wanted:
            backend = make_backend(self.backend_name, self.network, **self._lane_options(len(self._lanes)))
            self._lanes.append(_Lane(backend, 0, np.zeros(backend.num_outputs, dtype=np.int64)))
        for k, lane in enumerate(self._lanes):
            lane.start_after = k * settings.clear_every // 2
        self._prediction = RunningPrediction.of(self.network.num_outputs, settings)
        self.reset()

    def _lane_options(self, lane: int) -> dict[str, Any]:
        """The backend options of instance ``lane``: on CRI each instance has a core of its own
        (a second network loaded onto the same core would replace the first)."""
        if self.backend_name != "cri":
            return self._options
        return {**self._options, "core_id": int(self._options.get("core_id", 0)) + lane}

    def reset(self) -> None:
        """Clear every membrane and restart the schedule and the running prediction."""
        for lane in self._lanes:
            self._clear(lane)
        self._scheduled = 0
        self._was_quiet = False
        self._prediction.reset()

    def is_quiet(self, frame: Frame) -> bool:
        """Whether ``frame`` filled at fewer than ``min_event_rate`` events per second."""
        rate = self._settings.min_event_rate
        return rate > 0 and self._settings.events_per_frame * US_PER_S < rate * (frame.t_last_us - frame.t_first_us)

    def push(self, frame: Frame) -> list[Decision]:
        """Step ``frame`` into every started instance; the decisions of the windows it completed,
        or, when the scene just fell quiet, one "no gesture" decision."""
        start = time.perf_counter()
        decisions = []
        quiet = self.is_quiet(frame)
        for lane in self._lanes:
            if self._scheduled < lane.start_after:
                continue
            lane.counts += self._step(lane.backend, frame.data)
            lane.stepped += 1
            if lane.stepped == self._settings.clear_every:
                for _ in range(self._settings.drain_steps):
                    lane.counts += self._step(lane.backend, None)
                decisions.append(self._prediction.update(lane.counts, frame.t_last_us, frame.index, quiet))
                self._clear(lane)
        if quiet and not self._was_quiet and not decisions:
            decisions.append(self._prediction.fall_quiet(frame.t_last_us, frame.index))
        self._was_quiet = quiet
        self._scheduled += 1
        self._counters["frames"] += 1
        self._counters["decisions"] += len(decisions)
        self._timings.frames.append(time.perf_counter() - start)
        return decisions

    def _step(self, backend: Backend, inputs: StepInput) -> np.ndarray:
        start = time.perf_counter()
        spikes = backend.step(inputs)
        self._timings.steps.append(time.perf_counter() - start)
        self._counters["steps"] += 1
        return spikes

    def _clear(self, lane: _Lane) -> None:
        lane.backend.reset()
        lane.counts[:] = 0
        lane.stepped = 0
        self._counters["clears"] += 1

    def close(self) -> None:
        """Release the backends; safe to call more than once."""
        while self._lanes:
            self._lanes.pop().backend.close()

    def __enter__(self) -> PredictionEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def decide_stream(event_batches: Iterable[np.ndarray], sensor_size: SensorSize, network: Network,
                  settings: PipelineSettings, *, backend_options: dict[str, Any] | None = None) -> Iterator[Decision]:
    """The decisions the live pipeline makes on a stream when it drops nothing (a lossless
    replay): integrator (with the noise filter if set) and engine, synchronously, in order."""
    frames = FrameBuilder(sensor_size, settings)
    with make_engine(network, settings, backend_options=backend_options) as engine:
        for batch in event_batches:
            for frame in frames.push(batch):
                yield from engine.push(frame)
        yield from engine.flush()


def make_engine(network: Network, settings: PipelineSettings, *,
                backend_options: dict[str, Any] | None = None) -> PredictionEngine:
    """The engine ``settings`` ask for: a :class:`PredictionEngine` on a local backend, or with
    ``settings.remote`` set a :class:`~livegesture.pipeline.remote.client.RemoteEngine` that asks
    ``livegesture serve`` on that host for the decisions."""
    if settings.remote:
        from livegesture.pipeline.remote.client import RemoteEngine

        return RemoteEngine(network, settings)
    return PredictionEngine(network, settings, backend_options=backend_options)
