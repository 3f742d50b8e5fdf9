"""The live pipeline over a long run, in one run: throughput, latency, drops and memory.

The shipped demo session is replayed in a loop for ``DURATION_S`` seconds of wall time twice:
at real-time speed (what a camera delivers: nothing may be dropped, latency stays low) and as
fast as possible in live mode (the worker cannot keep up: the oldest frames are dropped and
counted, and the pipeline never falls behind). The resident memory is sampled once a second;
it must stay flat (the last sample against the one after warm-up).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

from livegesture.commands import DEMO_RECORDING
from livegesture.model.files import DEFAULT_MODEL, load_model
from livegesture.pipeline.runner import Pipeline
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources import open_source
from livegesture.sources.replay import ReplaySource

DURATION_S = 30.0
WARM_UP_S = 5.0
PAGE_BYTES = resource.getpagesize()
MEMORY_GROWTH_LIMIT = 1.10
"""Largest allowed ratio of the final resident memory to the one after warm-up."""


def resident_mb() -> float:
    """This process's resident memory now (not the peak)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_BYTES / 2**20


def run(speed: float) -> None:
    """``speed`` as in the settings: 1 real time, 0 as fast as possible."""
    model = load_model(DEFAULT_MODEL)
    source = ReplaySource(open_source(DEMO_RECORDING), loop=True)
    settings = PipelineSettings(backend="fast", speed=speed, lossless=False)
    pipeline = Pipeline(source, model.network, settings, class_names=model.info.class_names)
    memory = []
    start = time.monotonic()
    with pipeline:
        while (elapsed := time.monotonic() - start) < DURATION_S:
            time.sleep(1.0)
            update = pipeline.poll()
            if update.error:
                raise SystemExit(update.error)
            if elapsed >= WARM_UP_S:
                memory.append(resident_mb())
    s = update.stats
    label = "real time" if speed else "as fast as possible (live: drops allowed)"
    print(f"{label}: {s.events_in / DURATION_S:,.0f} events/s, {s.frames / DURATION_S:.1f} frames/s, "
          f"{s.frames_stepped:,} of {s.frames:,} frames stepped ({s.dropped_frames:,} dropped, "
          f"{s.dropped_batches:,} batches dropped), {s.decisions:,} decisions")
    print(f"  step {s.step_ms:.2f} ms, latency mean {s.latency_ms_mean:.1f} ms, p95 {s.latency_ms_p95:.1f} ms")
    growth = memory[-1] / memory[0]
    verdict = "flat" if growth <= MEMORY_GROWTH_LIMIT else "GROWING"
    print(f"  resident memory {memory[0]:.0f} MB after warm-up -> {memory[-1]:.0f} MB after {DURATION_S:.0f} s "
          f"(x{growth:.3f}, {verdict}; limit x{MEMORY_GROWTH_LIMIT})")


def main() -> None:
    print(f"{DEMO_RECORDING.name} looped for {DURATION_S:.0f} s, shipped model, fast backend, periodic mode")
    run(speed=1.0)
    run(speed=0.0)


if __name__ == "__main__":
    main()
