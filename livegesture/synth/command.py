"""Handlers of ``livegesture synth dataset`` and ``livegesture synth recording``."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from tqdm import tqdm

from livegesture.sources.labels import NUM_CLASSES
from livegesture.synth.generate import SynthSettings
from livegesture.synth.gestures import TIMINGS, parse_class
from livegesture.synth.writers import default_test_users, write_dataset, write_recording


def _settings(args: argparse.Namespace) -> SynthSettings:
    timing = TIMINGS[args.timing]
    if args.gesture_seconds is not None:
        low, high = args.gesture_seconds
        timing = replace(timing, gesture_seconds=(low, high))
    return SynthSettings(timing=timing)


def _fail(message: str) -> int:
    print(f"livegesture: error: {message}", file=sys.stderr)
    return 2


def dataset(args: argparse.Namespace) -> int:
    """Write a synthetic DVS Gesture folder."""
    try:
        settings = _settings(args)
        lightings = args.lightings
        test_users = default_test_users(args.users) if args.test_users is None else args.test_users
        total = args.users * len(lightings) * NUM_CLASSES * args.repetitions
        start = time.monotonic()
        with tqdm(total=total, unit="gesture", desc="synth dataset", disable=args.quiet) as bar:
            written = write_dataset(args.out, args.users, lightings, test_users, args.seed, args.workers,
                                    args.repetitions, settings, progress=bar.update)
    except ValueError as err:
        return _fail(str(err))
    seconds = time.monotonic() - start
    gestures = sum(w.gestures for w in written)
    events = sum(w.events for w in written)
    print(f"{args.out}: {len(written)} recordings, {gestures} gestures, {events:,} events "
          f"(users 1-{args.users - test_users} train, {test_users} test) in {seconds:.0f} s, "
          f"{gestures / seconds:.1f} gestures/s")
    return 0


def recording(args: argparse.Namespace) -> int:
    """Write one continuous aedat4 session with its labels."""
    try:
        labels = None if args.gestures is None else [parse_class(name) for name in args.gestures]
        settings = _settings(args)
        total = NUM_CLASSES if labels is None else len(labels)
        with tqdm(total=total, unit="gesture", desc="synth recording", disable=args.quiet) as bar:
            written = write_recording(args.out, labels, args.seed, args.user, args.lighting, args.workers,
                                      settings, progress=bar.update)
    except ValueError as err:
        return _fail(str(err))
    print(f"{written.path}: {written.gestures} gestures, {written.events:,} events, "
          f"{written.duration_us / 1e6:.1f} s ({written.lighting} light, user {written.user})")
    return 0
