"""The pipeline's figures: counters, rates, step times and latencies, kept by the stage
threads and read as one :class:`PipelineStats` snapshot. Thread-safe; no Qt, no I/O."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

LATENCY_WINDOW_S = 10.0
"""Wall-clock span of the recent decisions whose latency mean and 95th percentile are shown:
after a burst the figure recovers within this, at any decision rate."""
LATENCY_SAMPLES = 1_000
"""Most latencies kept (bounds memory at high decision rates)."""
RATE_WINDOW_S = 2.0
"""Wall-clock span over which events/s and frames/s are measured."""


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


class LatencyWindow:
    """Latencies of the decisions published in the last ``window_s`` seconds (at least the
    latest one, so that a slow decision rate still shows a figure)."""

    def __init__(self, window_s: float = LATENCY_WINDOW_S, samples: int = LATENCY_SAMPLES) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=samples)

    def add(self, published: float, latency_s: float, count: int = 1) -> None:
        self._samples.extend([(published, latency_s)] * count)

    def summary_ms(self, now: float) -> tuple[float, float]:
        """Mean and 95th percentile in ms over the window; ``(0, 0)`` before the first decision."""
        while len(self._samples) > 1 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        if not self._samples:
            return 0.0, 0.0
        latencies = np.array([latency for _, latency in self._samples]) * 1e3
        return float(latencies.mean()), float(np.percentile(latencies, 95))


@dataclass(frozen=True)
class StageCounts:
    """Counters of the three stages since the pipeline started."""

    events_in: int = 0
    """Events handed over by the source."""
    events_integrated: int = 0
    """Events integrated (after the noise filter, inside the region of interest)."""
    frames: int = 0
    """Frames integrated."""
    frames_stepped: int = 0
    """Frames the network stepped."""
    decisions: int = 0
    dropped_frames: int = 0
    dropped_batches: int = 0
    dropped_events: int = 0
    """Events of the dropped batches."""
    lost_frames: int = 0
    """Frames a remote engine lost when its link broke (in flight, or sent while reconnecting)."""


@dataclass(frozen=True)
class PipelineStats(StageCounts):
    """A snapshot of the pipeline's figures."""

    events_per_s: float = 0.0
    """Events handed over by the source, per second of wall time (last :data:`RATE_WINDOW_S`)."""
    frames_per_s: float = 0.0
    """Frames integrated per second."""
    step_ms: float = 0.0
    """Mean wall time of one backend step (recent steps)."""
    frame_ms: float = 0.0
    """Mean worker time per frame: every instance's step, drain steps and decisions (recent frames)."""
    latency_ms_mean: float = 0.0
    """From the hand-over of the batch that completed a window's last frame to the decision
    being published; mean over the decisions of the last :data:`LATENCY_WINDOW_S` (0 before the first)."""
    latency_ms_p95: float = 0.0
    event_queue_depth: int = 0
    frame_queue_depth: int = 0
    filter_kept: float | None = None
    """Share of the events the noise filter kept (None with the filter off)."""

    def figures(self) -> str:
        """One line of the figures, for a terminal or a status bar."""
        kept = "" if self.filter_kept is None else f"  noise filter keeps {self.filter_kept:.0%}"
        return (f"{self.events_per_s:>9,.0f} events/s  {self.frames_per_s:5.1f} frames/s  step {self.step_ms:.2f} ms  "
                f"latency {self.latency_ms_mean:.1f} ms (p95 {self.latency_ms_p95:.1f})  "
                f"dropped {self.dropped_frames:,} frames, {self.dropped_events:,} events"
                + (f", lost {self.lost_frames:,} frames" if self.lost_frames else "") + kept)


class PipelineMeter:
    """Collects the figures: each stage thread reports what it did, :meth:`snapshot` reads them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = StageCounts()
        self._latencies = LatencyWindow()
        self._step_ms = self._frame_ms = 0.0
        self._filter_kept: float | None = None
        self._event_rate, self._frame_rate = RateMeter(), RateMeter()

    def _add(self, **increments: int) -> None:
        with self._lock:
            self._counts = replace(self._counts, **{name: getattr(self._counts, name) + n
                                                    for name, n in increments.items()})

    def batch_in(self, events: int) -> None:
        self._add(events_in=events)

    def batch_dropped(self, events: int) -> None:
        self._add(dropped_batches=1, dropped_events=events)

    def frame_dropped(self) -> None:
        self._add(dropped_frames=1)

    def integrated(self, frames: int, events_integrated: int, filter_kept: float | None = None) -> None:
        """``frames`` more frames; ``events_integrated`` in all so far; ``filter_kept``: the share
        of the events the noise filter kept (None with it off)."""
        with self._lock:
            self._counts = replace(self._counts, frames=self._counts.frames + frames,
                                   events_integrated=events_integrated)
            self._filter_kept = filter_kept

    def stepped(self, frames: int, decisions: int, published: float, latencies_s: Sequence[float], step_ms: float,
                frame_ms: float, lost: int = 0) -> None:
        """``frames`` more frames pushed to the engine, ``lost`` of the frames pushed so far never
        stepped after all (a remote link broke), and ``decisions`` published at wall time
        ``published`` (``time.perf_counter()``), those whose last frame's hand-over is known
        ``latencies_s`` after it (a remote engine decides for a frame some pushes later)."""
        with self._lock:
            self._counts = replace(self._counts, frames_stepped=self._counts.frames_stepped + frames - lost,
                                   decisions=self._counts.decisions + decisions,
                                   lost_frames=self._counts.lost_frames + lost)
            for latency_s in latencies_s:
                self._latencies.add(published, latency_s)
            self._step_ms, self._frame_ms = step_ms, frame_ms

    def snapshot(self, now: float, event_queue_depth: int, frame_queue_depth: int) -> PipelineStats:
        """The figures at wall time ``now`` (``time.perf_counter()``); rates since the previous snapshots."""
        with self._lock:
            counts = asdict(self._counts)
            latency_ms_mean, latency_ms_p95 = self._latencies.summary_ms(now)
            step_ms, frame_ms, filter_kept = self._step_ms, self._frame_ms, self._filter_kept
            events_per_s = self._event_rate.update(now, counts["events_in"])
            frames_per_s = self._frame_rate.update(now, counts["frames"])
        return PipelineStats(
            **counts, events_per_s=events_per_s, frames_per_s=frames_per_s, step_ms=step_ms, frame_ms=frame_ms,
            latency_ms_mean=latency_ms_mean, latency_ms_p95=latency_ms_p95,
            event_queue_depth=event_queue_depth, frame_queue_depth=frame_queue_depth,
            filter_kept=filter_kept)
