"""Handlers of the ``info``, ``run`` and ``demo`` subcommands."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from livegesture.filters import BackgroundActivityFilter
from livegesture.integrate import DEFAULT_EVENTS_PER_FRAME, DEFAULT_FRAMES_PER_WINDOW, SlidingIntegrator
from livegesture.sources import open_source
from livegesture.sources.base import EventSource
from livegesture.sources.replay import ReplaySource

DEMO_RECORDING = Path(__file__).resolve().parent.parent / "recordings" / "demo_session.aedat4"
REPORT_INTERVAL_S = 1.0


def info(args: argparse.Namespace) -> int:
    """Print sensor, event count, time span, polarity balance and labels of a recording."""
    with open_source(args.source) as source:
        counts = np.zeros(2, dtype=np.int64)
        first = last = None
        for batch in source:
            if batch.size:
                first = int(batch["t"][0]) if first is None else first
                last = int(batch["t"][-1])
                counts += np.bincount(batch["p"], minlength=2)
        width, height = source.sensor_size
        total = int(counts.sum())
        print(f"{source.name}")
        print(f"  sensor      {width} x {height}")
        print(f"  events      {total:,} ({counts[1]:,} ON, {counts[0]:,} OFF)")
        if total:
            span_s = (last - first) / 1e6
            rate = f", {total / span_s:,.0f} events/s" if span_s > 0 else ""
            print(f"  time        {first:,} .. {last:,} us ({span_s:.3f} s{rate})")
        if source.labels:
            print(f"  labels      {len(source.labels)} gestures")
            for segment in source.labels:
                print(f"    {segment.start_us:>14,} .. {segment.end_us:>14,} us  {segment.label:>2} {segment.name}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Stream a source through the sliding integrator and report rates once a second."""
    source = open_source(args.source)
    if not source.live:
        source = ReplaySource(source, speed=args.speed or None)
    noise_filter = BackgroundActivityFilter(source.sensor_size) if args.noise_filter else None
    return _stream_headless(source, args.events_per_frame or DEFAULT_EVENTS_PER_FRAME,
                            args.frames_per_window or DEFAULT_FRAMES_PER_WINDOW, args.duration, noise_filter)


def demo(args: argparse.Namespace) -> int:
    """The demo on the shipped recording; headless where there is no display."""
    if not args.headless and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("livegesture: the GUI is not built yet; running headless")
    run_args = argparse.Namespace(source=str(DEMO_RECORDING), speed=1.0, events_per_frame=None,
                                  frames_per_window=None, noise_filter=False, duration=args.duration)
    return run(run_args)


def _stream_headless(source: EventSource, events_per_frame: int, frames_per_window: int,
                     duration_s: float | None, noise_filter: BackgroundActivityFilter | None) -> int:
    integrator = SlidingIntegrator(source.sensor_size, events_per_frame, frames_per_window)
    width, height = source.sensor_size
    print(f"{source.name}: {width}x{height}, {events_per_frame:,} events per frame, "
          f"{frames_per_window} frames per window")
    start = last_report = time.monotonic()
    events = frames = reported_events = reported_frames = 0
    with source:
        for batch in source:
            events += len(batch)
            if noise_filter is not None:
                batch = noise_filter(batch)
            frames += len(integrator.push(batch))
            now = time.monotonic()
            if now - last_report >= REPORT_INTERVAL_S:
                span = now - last_report
                print(f"{now - start:7.1f} s  {(events - reported_events) / span:>11,.0f} events/s  "
                      f"{(frames - reported_frames) / span:6.1f} frames/s")
                last_report, reported_events, reported_frames = now, events, frames
            if duration_s is not None and now - start >= duration_s:
                break
    elapsed = max(time.monotonic() - start, 1e-9)
    print(f"done: {events:,} events, {frames:,} frames in {elapsed:.1f} s "
          f"({events / elapsed:,.0f} events/s, {frames / elapsed:.1f} frames/s)")
    return 0
