"""A soak test of the live pipeline: the shipped recordings looped at 10x for 10 minutes, with
bursts injected, in one run: memory at start and end, drops, latency and its recovery.

The source plays ``recordings/*.aedat4`` one after the other, endlessly, and every
``--burst-every`` seconds of wall time inserts a burst of ``--burst-events`` random events
within one second of recording time (what a flickering light or a shaken camera produces).
It runs in live mode (no ``--lossless``): a full queue drops its oldest item and counts it.
After each burst it measures the *recovery*: the wall time until both queues are back to
their depth before the burst and no frame has been dropped for ``SETTLED_S``. Resident
memory is sampled every poll; it must stay flat (end against start, after warm-up).

    python benchmarks/bench_soak.py                 # 10 minutes
    python benchmarks/bench_soak.py --seconds 60    # a short check
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.commands import DEMO_RECORDING
from livegesture.events import DVS128_SIZE, make_events
from livegesture.model.files import DEFAULT_MODEL, load_model
from livegesture.pipeline.runner import Pipeline
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources import open_source
from livegesture.sources.base import EventSource

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark, also when imported by path
from bench_pipeline import MEMORY_GROWTH_LIMIT, resident_mb  # noqa: E402

RECORDINGS = sorted(DEMO_RECORDING.parent.glob("*.aedat4"))
SPEED = 10.0
BURST_SPAN_US = 1_000_000
"""A burst's events lie within this much recording time."""
GAP_US = 100_000
"""Recording time between the end of one recording and the start of the next."""
WARM_UP_S = 5.0
POLL_S = 0.1
SETTLED_S = 1.0
"""A burst has been absorbed once the queues are back and no frame was dropped for this long."""
RECOVERY_TARGET_S = 2.0


class LoopedWithBursts(EventSource):
    """The recordings in a loop, times shifted to keep increasing, and a burst of random events
    every ``burst_every_s`` of wall time (a class-level list records when each was handed over)."""

    def __init__(self, paths: list[Path], burst_every_s: float, burst_events: int) -> None:
        self.name = "looped " + " + ".join(p.name for p in paths)
        self.sensor_size = DVS128_SIZE
        self.paths, self.burst_every_s = paths, burst_every_s
        rng = np.random.default_rng(0)
        t = np.sort(rng.integers(0, BURST_SPAN_US, burst_events))
        self._burst = make_events(t, rng.integers(0, DVS128_SIZE[0], burst_events),
                                  rng.integers(0, DVS128_SIZE[1], burst_events), rng.integers(0, 2, burst_events))
        self.bursts_at: list[float] = []
        self._closed = False

    def __iter__(self) -> Iterator[np.ndarray]:
        last = -GAP_US  # the last timestamp handed out
        next_burst = time.monotonic() + self.burst_every_s
        while not self._closed:
            for path in self.paths:
                shift = None
                with open_source(path) as recording:
                    for batch in recording:
                        if not batch.size:
                            continue
                        if shift is None:  # this pass starts GAP_US after the last event handed out
                            shift = last + GAP_US - int(batch["t"][0])
                        batch = batch.copy()
                        batch["t"] += shift
                        last = int(batch["t"][-1])
                        yield batch
                        if time.monotonic() >= next_burst:
                            burst = self._burst.copy()
                            burst["t"] += last + 1
                            self.bursts_at.append(time.monotonic())
                            yield burst
                            shift += int(burst["t"][-1]) - last  # the recording goes on after the burst
                            last = int(burst["t"][-1])
                            next_burst = time.monotonic() + self.burst_every_s
                        if self._closed:
                            return

    def close(self) -> None:
        self._closed = True


@dataclass
class Recovery:
    """One burst: when it was handed over, the queue depths before it, when it was absorbed."""

    at: float
    baseline: tuple[int, int]
    settled_since: float | None = None
    recovered_s: float | None = None
    peak_latency_ms: float = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall time to run (default 600)")
    parser.add_argument("--speed", type=float, default=SPEED, help=f"replay speed (default {SPEED:g})")
    parser.add_argument("--burst-every", type=float, default=60.0, help="seconds between bursts (default 60)")
    parser.add_argument("--burst-events", type=int, default=5_000_000, help="events per burst (default 5,000,000)")
    args = parser.parse_args()

    model = load_model(DEFAULT_MODEL)
    source = LoopedWithBursts(RECORDINGS, args.burst_every, args.burst_events)
    settings = PipelineSettings(backend="fast", speed=args.speed, lossless=False)
    pipeline = Pipeline(source, model.network, settings, class_names=model.info.class_names)
    print(f"{source.name} at {args.speed:g}x for {args.seconds:.0f} s, a burst of {args.burst_events:,} events "
          f"every {args.burst_every:.0f} s; shipped model, fast backend, live mode")
    memory: list[float] = []
    memory_after: list[float] = []  # the first sample once the first burst was absorbed
    recoveries: list[Recovery] = []
    last_dropped, depths = 0, (0, 0)
    start = time.monotonic()
    with pipeline:
        while (now := time.monotonic()) - start < args.seconds:
            time.sleep(POLL_S)
            update = pipeline.poll()
            if update.error:
                raise SystemExit(update.error)
            stats = update.stats
            if now - start >= WARM_UP_S:
                memory.append(resident_mb())
                if recoveries and recoveries[0].recovered_s is not None and not memory_after:
                    memory_after.append(memory[-1])
            while len(recoveries) < len(source.bursts_at):
                recoveries.append(Recovery(source.bursts_at[len(recoveries)], depths))
            depths = (stats.event_queue_depth, stats.frame_queue_depth)
            for burst in recoveries:
                if burst.recovered_s is not None:
                    continue
                burst.peak_latency_ms = max(burst.peak_latency_ms, stats.latency_ms_p95)
                calm = (stats.dropped_frames == last_dropped and depths[0] <= burst.baseline[0]
                        and depths[1] <= burst.baseline[1])
                burst.settled_since = (burst.settled_since or now) if calm else None
                if burst.settled_since is not None and now - burst.settled_since >= SETTLED_S:
                    burst.recovered_s = burst.settled_since - burst.at
            last_dropped = stats.dropped_frames
    s = update.stats
    elapsed = time.monotonic() - start
    print(f"handed over {s.events_in:,} events ({s.events_in / elapsed:,.0f}/s), {s.frames:,} frames, "
          f"{s.frames_stepped:,} stepped, {s.decisions:,} decisions")
    print(f"dropped: {s.dropped_frames:,} frames, {s.dropped_batches:,} batches ({s.dropped_events:,} events)")
    print(f"latency at the end (last 10 s): mean {s.latency_ms_mean:.1f} ms, p95 {s.latency_ms_p95:.1f} ms; "
          f"step {s.step_ms:.2f} ms")
    for number, burst in enumerate(recoveries, start=1):
        recovered = "not yet" if burst.recovered_s is None else f"{burst.recovered_s:.1f} s"
        print(f"burst {number} at {burst.at - start:5.1f} s: queues drained and drops stopped after {recovered} "
              f"(target <= {RECOVERY_TARGET_S:g} s); p95 latency up to {burst.peak_latency_ms:.0f} ms")
    if memory:
        print(f"resident memory {memory[0]:.0f} MB after warm-up -> {memory[-1]:.0f} MB at the end, peak "
              f"{max(memory):.0f} MB")
        if recoveries and recoveries[0].recovered_s is not None:  # the queues have held burst batches once
            steady = memory_after[0]
            growth = memory[-1] / steady
            verdict = "flat" if growth <= MEMORY_GROWTH_LIMIT else "GROWING"
            print(f"  after the first burst {steady:.0f} MB -> {memory[-1]:.0f} MB at the end (x{growth:.3f}, "
                  f"{verdict}; limit x{MEMORY_GROWTH_LIMIT})")


if __name__ == "__main__":
    main()
