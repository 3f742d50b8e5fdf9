"""Handlers of the ``info``, ``run`` and ``demo`` subcommands."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from livegesture.evaluate.metrics import NO_GESTURE, RunningAccuracy, true_label_at
from livegesture.events import LivegestureError
from livegesture.pipeline.engine import backend_label
from livegesture.pipeline.decision import label_name
from livegesture.pipeline.runner import Pipeline, PipelineUpdate
from livegesture.pipeline.settings import PipelineSettings, load_settings, save_settings
from livegesture.sources import open_source
from livegesture.sources.labels import GestureSegment

DEMO_RECORDING = Path(__file__).resolve().parent.parent / "recordings" / "demo_session.aedat4"
REPORT_INTERVAL_S = 1.0
"""Headless: seconds between two printed lines."""
POLL_INTERVAL_S = 0.1
"""Headless: seconds between two polls of the pipeline."""
NAME_WIDTH = 27
"""Width of the longest DVS Gesture class name (right arm counter-clockwise)."""


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
    """Recognise gestures on a recording or the camera: in the window where there is a display
    and ``--headless`` is not given, else printing the running prediction."""
    settings = settings_from_args(args)
    if args.save_config:
        print(f"settings saved to {save_settings(settings, args.config)}")
    return _window_or_headless(args.source, settings, args.headless, args.duration, args.config)


def demo(args: argparse.Namespace) -> int:
    """The demo on the shipped recording; headless where there is no display."""
    settings = load_settings().replace(speed=1.0, lossless=False)
    return _window_or_headless(str(DEMO_RECORDING), settings, args.headless, args.duration)


def _window_or_headless(source: str, settings: PipelineSettings, headless: bool, duration_s: float | None,
                        config_path: str | None = None) -> int:
    if not headless and _has_display():
        from livegesture.gui.app import run_gui

        return run_gui(source, settings, config_path, duration_s)
    return run_headless(source, settings, duration_s)


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def settings_from_args(args: argparse.Namespace) -> PipelineSettings:
    """The config file's settings (``args.config`` or the default file), overridden by every
    option given: options are named as the settings' fields."""
    changes = {spec.name: getattr(args, spec.name) for spec in fields(PipelineSettings)
               if getattr(args, spec.name, None) is not None}
    if "model" in changes:
        changes["model"] = str(Path(changes["model"]).expanduser().resolve())
    return load_settings(args.config).replace(**changes)


def run_headless(source_spec: str, settings: PipelineSettings, duration_s: float | None) -> int:
    """Run the pipeline on ``source_spec``, printing the running prediction and the figures about
    once a second, until the replay ends, ``duration_s`` of wall time passes or Ctrl-C."""
    pipeline = Pipeline(open_source(source_spec), settings=settings)
    source = pipeline.source
    width, height = source.sensor_size
    print(f"{source.name}: {width}x{height}; model {settings.model}; backend {backend_label(settings)}, "
          f"{settings.mode}; {settings.events_per_frame:,} events per frame, windows of {settings.clear_every} "
          f"frames + {settings.drain_steps} drain steps")
    accuracy = RunningAccuracy(source.labels or [])
    start = last_report = time.monotonic()
    with pipeline:
        while True:
            time.sleep(POLL_INTERVAL_S)
            update = pipeline.poll()
            accuracy.add([d.t_us for d in update.decisions], [d.label for d in update.decisions])
            now = time.monotonic()
            if update.error and not (update.running or update.finished):
                raise LivegestureError(update.error)
            if update.error:  # reported once and the pipeline goes on (a remote link lost and back)
                print(f"{now - start:6.1f} s  {update.error}")
            done = update.finished or (duration_s is not None and now - start >= duration_s)
            if now - last_report >= REPORT_INTERVAL_S or done:
                print(f"{now - start:6.1f} s  {describe(update, pipeline.class_names, source.labels)}")
                last_report = now
            if done:
                break
    stats = update.stats
    print(f"done: {stats.events_in:,} events, {stats.frames:,} frames ({stats.frames_stepped:,} stepped, "
          f"{stats.dropped_frames:,} dropped), {stats.decisions:,} decisions in {time.monotonic() - start:.1f} s"
          + ("" if accuracy.accuracy is None else
             f"; {accuracy.correct} of {accuracy.total} decisions during labelled gestures named them"))
    return 0


def describe(update: PipelineUpdate, class_names: tuple[str, ...], labels: list[GestureSegment] | None) -> str:
    """One line: the running prediction (and the true gesture of a labelled recording), then the figures."""
    decision = update.prediction
    if decision is None:
        prediction = f"{'waiting for a window':<{NAME_WIDTH + 5}}"
    else:
        name = label_name(decision.label, class_names)
        prediction = f"{name:<{NAME_WIDTH}} {decision.confidence:.2f}"
        if labels is not None:
            truth = true_label_at(labels, decision.t_us)
            prediction += f"  true: {label_name(None if truth == NO_GESTURE else truth, class_names):<{NAME_WIDTH}}"
    return f"{prediction}  {update.stats.figures()}"
