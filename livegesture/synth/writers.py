"""Synthetic recordings written in the real formats.

* :func:`write_dataset`: a folder in IBM's DVS Gesture layout: ``userNN_<lighting>.aedat``
  (AEDAT 3.1), ``userNN_<lighting>_labels.csv`` (1-based classes, microseconds),
  ``trials_to_train.txt`` and ``trials_to_test.txt``; the last ``test_users`` users are the
  test set, as users 24-29 are in IBM's split.
* :func:`write_recording`: one continuous aedat4 session with a ``_labels.csv`` sidecar.

Clips are made by a process pool; every clip has its own seed (see
:mod:`livegesture.synth.generate`), so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from livegesture.sources.dataset import LIGHTING_CONDITIONS, trial_name, write_trials_lists
from livegesture.sources.labels import GestureSegment, labels_path_for, write_labels
from livegesture.synth.generate import (
    Clip,
    ClipJob,
    SynthSettings,
    assemble,
    generate_clip,
    numbered,
    session_order,
)

RECORDING_EPOCH = datetime(2017, 3, 6, 9, 0, tzinfo=timezone.utc)
"""``#Start-Time`` of the synthetic AEDAT files: fixed, so that files are reproducible."""
SESSION_START_US = 1_000_000
"""The first event of a session comes after this much (a camera is started before the subject begins)."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Written:
    """One recording written: where, how many gestures and events."""

    path: Path
    user: int
    lighting: str
    gestures: int
    events: int
    duration_us: int
    """Timestamp of the last event."""


def _written(path: Path, user: int, lighting: str, events: np.ndarray, segments: list[GestureSegment]) -> Written:
    return Written(path, user, lighting, len(segments), len(events), int(events["t"][-1]) if len(events) else 0)


def default_test_users(users: int) -> int:
    """Test users for ``users`` users in IBM's proportion (6 of 29), at least one when there are two or more."""
    return 0 if users < 2 else max(1, round(users * 6 / 29))


def _check_lightings(lightings: Sequence[str]) -> list[str]:
    lightings = list(lightings)
    if not lightings:
        raise ValueError("at least one lighting is needed")
    for name in lightings:
        if name not in LIGHTING_CONDITIONS:
            raise ValueError(f"unknown lighting {name!r}: expected one of {', '.join(LIGHTING_CONDITIONS)}")
    if len(set(lightings)) != len(lightings):
        raise ValueError(f"lightings listed more than once: {', '.join(lightings)}")
    return lightings


def _check_workers(workers: int) -> None:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")


def _clips(jobs: list[ClipJob], workers: int, progress: Progress | None) -> Iterator[Clip]:
    """The clips of ``jobs`` in order, made by ``workers`` processes."""
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            clip = generate_clip(job)
            if progress:
                progress(1)
            yield clip
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        for clip in pool.map(generate_clip, jobs):
            if progress:
                progress(1)
            yield clip


def _session(clips: list[Clip]) -> tuple[np.ndarray, list[GestureSegment]]:
    return assemble(clips, SESSION_START_US)


def write_dataset(out: str | Path, users: int, lightings: Sequence[str] = LIGHTING_CONDITIONS,
                  test_users: int | None = None, seed: int = 0, workers: int = 2, repetitions: int = 1,
                  settings: SynthSettings = SynthSettings(), progress: Progress | None = None) -> list[Written]:
    """Write a DVS Gesture folder of ``users`` x ``lightings`` recordings into ``out``.

    Each recording holds every class ``repetitions`` times in random order. Users are
    numbered 1..``users``; the last ``test_users`` (default: :func:`default_test_users`)
    form the test split. ``progress`` is called with 1 after each gesture.
    """
    from livegesture.sources.aedat3 import write_aedat3

    if users < 1:
        raise ValueError(f"users must be >= 1, got {users}")
    test_users = default_test_users(users) if test_users is None else test_users
    if not 0 <= test_users < users:
        raise ValueError(f"test users must be >= 0 and fewer than the users ({users}), got {test_users}")
    lightings = _check_lightings(lightings)
    _check_workers(workers)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    sessions = [(user, light) for user in range(1, users + 1) for light in lightings]
    plans = {key: [ClipJob(seed, key[0], key[1], label, rep, settings)
                   for label, rep in session_order(seed, key[0], key[1], repetitions)] for key in sessions}
    jobs = [job for key in sessions for job in plans[key]]

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Written] = []
    clips = _clips(jobs, workers, progress)
    for number, (user, light) in enumerate(sessions):
        events, segments = _session([next(clips) for _ in plans[(user, light)]])
        path = out / trial_name(user, light)
        write_aedat3(path, events, settings.sensor_size, start_time=RECORDING_EPOCH + timedelta(hours=number))
        write_labels(labels_path_for(path), segments)
        written.append(_written(path, user, light, events, segments))
    first_test = users - test_users + 1
    write_trials_lists(out, [w.path for w in written if w.user < first_test],
                       [w.path for w in written if w.user >= first_test])
    return written


def make_session(labels: Sequence[int] | None = None, seed: int = 0, user: int = 1, lighting: str = "natural",
                 workers: int = 1, settings: SynthSettings = SynthSettings(),
                 progress: Progress | None = None) -> tuple[np.ndarray, list[GestureSegment]]:
    """One continuous session in memory: ``labels`` in that order (default: every class, shuffled)."""
    _check_lightings([lighting])
    _check_workers(workers)
    if user < 1:
        raise ValueError(f"user must be >= 1, got {user}")
    order = session_order(seed, user, lighting) if labels is None else numbered(list(labels))
    if not order:
        raise ValueError("a recording needs at least one gesture")
    jobs = [ClipJob(seed, user, lighting, label, rep, settings) for label, rep in order]
    return _session(list(_clips(jobs, workers, progress)))


def write_recording(path: str | Path, labels: Sequence[int] | None = None, seed: int = 0, user: int = 1,
                    lighting: str = "natural", workers: int = 1, settings: SynthSettings = SynthSettings(),
                    progress: Progress | None = None) -> Written:
    """Write :func:`make_session` as an aedat4 file and its ``_labels.csv`` sidecar."""
    from livegesture.sources.aedat4 import write_aedat4

    path = Path(path)
    if path.suffix != ".aedat4":
        raise ValueError(f"{path}: a recording is written as .aedat4")
    events, segments = make_session(labels, seed, user, lighting, workers, settings, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_aedat4(path, events, settings.sensor_size)
    write_labels(labels_path_for(path), segments)
    return _written(path, user, lighting, events, segments)
