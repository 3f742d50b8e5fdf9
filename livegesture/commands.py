"""Handlers of the ``info``, ``run`` and ``demo`` subcommands."""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np

from livegesture.display.state import DisplayState
from livegesture.events import LivegestureError
from livegesture.pipeline.engine import backend_label
from livegesture.pipeline.frames import check_roi
from livegesture.pipeline.options import settings_from_args
from livegesture.pipeline.runner import Pipeline
from livegesture.pipeline.settings import PipelineSettings, load_settings, save_settings
from livegesture.sources import open_source
from livegesture.sources.resets import OnReset, TimestampReset

DEMO_RECORDING = Path(__file__).resolve().parent.parent / "recordings" / "demo_session.aedat4"
REPORT_INTERVAL_S = 1.0
"""Headless: seconds between two printed lines."""
POLL_INTERVAL_S = 0.1
"""Headless: seconds between two polls of the pipeline."""
LIVE_INFO_S = 2.0
"""``info`` on a camera or network stream: seconds of it described."""


def info(args: argparse.Namespace) -> int:
    """Print sensor, what the network sees of it, event count, time span, polarity balance,
    timestamp resets and labels (classes numbered from 1, as the label files) of a recording."""
    settings = settings_from_args(args)
    with open_source(args.source, args.on_reset) as source:
        roi = check_roi(settings.roi, source.sensor_size)
        parts = _Parts()
        sampling = threading.Timer(LIVE_INFO_S, source.close) if source.live else None  # a live source never ends
        if sampling is not None:
            sampling.start()
        try:
            for batch in source:
                parts.add(batch)
        finally:
            if sampling is not None:
                sampling.cancel()
        width, height = source.sensor_size
        total = parts.total
        print(f"{source.name}" + (f" (live: {LIVE_INFO_S:g} s sampled)" if source.live else ""))
        print(f"  sensor      {width} x {height}" + (f" ({source.chip})" if getattr(source, "chip", "") else ""))
        print(f"  network     sees {roi.describe(source.sensor_size)}")
        print(f"  events      {total:,} ({parts.counts[1]:,} ON, {parts.counts[0]:,} OFF)")
        skipped = {kind: n for kind, n in getattr(source, "skipped", {}).items() if n}
        if skipped:
            print("  skipped     " + ", ".join(f"{n:,} {kind}" for kind, n in skipped.items()) + " records (not DVS)")
        if getattr(source, "trailing_bytes", 0):
            print(f"  truncated   {source.trailing_bytes} bytes after the last whole record")
        resets = getattr(source, "resets", ())
        spans = parts.spans(resets)
        for number, (first, last, count) in enumerate(spans, start=1):
            span_s = (last - first) / 1e6
            rate = f", {count / span_s:,.0f} events/s" if span_s > 0 else ""
            label = "time" if len(spans) == 1 else f"part {number}"
            print(f"  {label:<11} {first:,} .. {last:,} us ({span_s:.3f} s{rate})")
        for reset in resets:
            print(f"  reset       at {reset.describe()}, {args.on_reset}: later times shifted by {reset.shift_us:,} us")
        if source.labels:
            print(f"  labels      {len(source.labels)} gestures")
            for segment in source.labels:
                print(f"    {segment.start_us:>14,} .. {segment.end_us:>14,} us  {segment.label + 1:>2} {segment.name}")
    return 0


class _Parts:
    """Event counts and time span of a stream; :meth:`spans` cuts the span at timestamp resets."""

    def __init__(self) -> None:
        self.counts = np.zeros(2, dtype=np.int64)
        self.first: int | None = None
        self.last = 0

    def add(self, batch: np.ndarray) -> None:
        if batch.size:
            self.counts += np.bincount(batch["p"], minlength=2)
            self.first = int(batch["t"][0]) if self.first is None else self.first
            self.last = int(batch["t"][-1])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def spans(self, resets: tuple[TimestampReset, ...]) -> list[tuple[int, int, int]]:
        """(first, last timestamp, events) of each part, in the timestamps read (shifted)."""
        if self.first is None:
            return []
        shifts = [0, *(r.shift_us for r in resets)]
        starts = [self.first, *(r.after_us + r.shift_us for r in resets)]
        stops = [*(r.before_us + shift for r, shift in zip(resets, shifts)), self.last]
        bounds = [0, *(r.index for r in resets), self.total]
        return [(a, b, hi - lo) for a, b, lo, hi in zip(starts, stops, bounds[:-1], bounds[1:])]


def run(args: argparse.Namespace) -> int:
    """Recognise gestures on a recording or the camera: in the window where there is a display
    and ``--headless`` is not given, else printing the running prediction."""
    settings = settings_from_args(args)
    if args.save_config:
        print(f"settings saved to {save_settings(settings, args.config)}")
    return _window_or_headless(args.source, settings, args.headless, args.duration, args.config, args.on_reset)


def demo(args: argparse.Namespace) -> int:
    """The demo on the shipped recording; headless where there is no display."""
    settings = load_settings().replace(speed=1.0, lossless=False)
    return _window_or_headless(str(DEMO_RECORDING), settings, args.headless, args.duration)


def _window_or_headless(source: str, settings: PipelineSettings, headless: bool, duration_s: float | None,
                        config_path: str | None = None, on_reset: OnReset = "error") -> int:
    if not headless and _has_display():
        from livegesture.gui.app import run_gui

        return run_gui(source, settings, config_path, duration_s, on_reset)
    return run_headless(source, settings, duration_s, on_reset)


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_headless(source_spec: str, settings: PipelineSettings, duration_s: float | None,
                 on_reset: OnReset = "error") -> int:
    """Run the pipeline on ``source_spec``, printing the running prediction and the figures about
    once a second, until the replay ends, ``duration_s`` of wall time passes or Ctrl-C."""
    pipeline = Pipeline(open_source(source_spec, on_reset), settings=settings)
    source = pipeline.source
    width, height = source.sensor_size
    seen = check_roi(settings.roi, source.sensor_size).describe(source.sensor_size)
    print(f"{source.name}: {width}x{height}, the network sees {seen}")
    print(f"model {settings.model}; backend {backend_label(settings)}, "
          f"{settings.mode}; {settings.events_per_frame:,} events per frame, windows of {settings.clear_every} "
          f"frames + {settings.drain_steps} drain steps")
    display = DisplayState(source.name, source.labels, source.live)
    start = last_report = time.monotonic()
    with pipeline:
        while True:
            time.sleep(POLL_INTERVAL_S)
            update = pipeline.poll()
            display.apply(update)
            if update.error:
                raise LivegestureError(update.error)
            if display.message:
                print(f"warning: {display.message}")
            now = time.monotonic()
            done = update.finished or (duration_s is not None and now - start >= duration_s)
            if now - last_report >= REPORT_INTERVAL_S or done:
                print(f"{now - start:6.1f} s  {display.line()}")
                last_report = now
            if done:
                break
    stats, accuracy = update.stats, display.accuracy
    print(f"done: {stats.events_in:,} events, {stats.frames:,} frames ({stats.frames_stepped:,} stepped, "
          f"{stats.dropped_frames:,} dropped), {stats.decisions:,} decisions in {time.monotonic() - start:.1f} s"
          + ("" if accuracy.accuracy is None else
             f"; {accuracy.correct} of {accuracy.total} decisions during labelled gestures named them"))
    return 0
