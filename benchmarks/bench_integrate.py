"""Throughput of the streaming integrator against the offline reference path, in one run.

Reference: SpikingJelly's equal-count integration (run verbatim) of whole samples, then
``F.interpolate`` per frame and ``> 0`` - the transform the nets were trained with.
Ours: :class:`SlidingIntegrator` fed camera-sized batches, and :func:`integrate_sample`
on whole samples. Single thread (torch included). Target: >= 50 M events/s at
1,000-event batches, i.e. streaming costs at most 2x the offline reference.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from livegesture.events import DVS128_SIZE, make_events
from livegesture.integrate import NET_INPUT_SIZE, SlidingIntegrator, integrate_sample
from livegesture.reference import spikingjelly_function

N_EVENTS = 4_000_000
SAMPLE_EVENTS = 200_000  # a DVS Gesture sample: ~6 s at a few tens of thousands of events/s
FRAMES = 10
REPEATS = 3


def reference_path(events: np.ndarray) -> None:
    integrate = spikingjelly_function("integrate_events_by_fixed_frames_number")
    for lo in range(0, len(events), SAMPLE_EVENTS):
        sample = events[lo:lo + SAMPLE_EVENTS]
        counts = integrate({k: sample[k] for k in "txyp"}, "number", FRAMES, 128, 128)
        for frame in counts:
            resized = F.interpolate(torch.from_numpy(frame).float()[None], size=(NET_INPUT_SIZE, NET_INPUT_SIZE),
                                    mode="bilinear", align_corners=False)
            (resized > 0).float()


def offline_ours(events: np.ndarray) -> None:
    for lo in range(0, len(events), SAMPLE_EVENTS):
        integrate_sample(events[lo:lo + SAMPLE_EVENTS], FRAMES, DVS128_SIZE)


def streaming(batch: int):
    def run(events: np.ndarray) -> None:
        integrator = SlidingIntegrator(DVS128_SIZE, SAMPLE_EVENTS // FRAMES, FRAMES)
        for lo in range(0, len(events), batch):
            integrator.push(events[lo:lo + batch])
    return run


def best_rate(run, events: np.ndarray) -> float:
    """Events per second, best of REPEATS (least disturbed by other load)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(events)
        times.append(time.perf_counter() - start)
    return len(events) / min(times)


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    events = make_events(np.arange(N_EVENTS), rng.integers(0, 128, N_EVENTS),
                         rng.integers(0, 128, N_EVENTS), rng.integers(0, 2, N_EVENTS))
    reference = best_rate(reference_path, events)
    print(f"{N_EVENTS:,} events, samples of {SAMPLE_EVENTS:,} -> {FRAMES} frames, 1 thread, best of {REPEATS}")
    print(f"{'path':<40}{'M events/s':>12}{'vs reference':>14}")
    print(f"{'reference (SpikingJelly + F.interpolate)':<40}{reference / 1e6:>12.1f}{1.0:>14.2f}")
    rows = [("offline integrate_sample", offline_ours)]
    rows += [(f"streaming, {b:,}-event batches", streaming(b)) for b in (1_000, 3_000, 10_000)]
    for name, run in rows:
        rate = best_rate(run, events)
        print(f"{name:<40}{rate / 1e6:>12.1f}{rate / reference:>14.2f}")


if __name__ == "__main__":
    main()
