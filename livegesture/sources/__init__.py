"""Event sources: recordings (AEDAT 2.0, AEDAT 3.1, aedat4), the live camera, a DV network
stream, and paced replay.

All of them implement :class:`~livegesture.sources.base.EventSource`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.events import EventFormatError, SensorSize, empty_events
from livegesture.sources.base import EventSource, InMemoryRecording
from livegesture.sources.resets import OnReset, TimestampReset

CAMERA_PREFIX = "camera"
NETWORK_PREFIX = "tcp://"
AEDAT_SUFFIX = ".aedat"
AEDAT4_SUFFIX = ".aedat4"
JAER_SUFFIX = ".dat"
"""jAER's older suffix: read when the file is AEDAT 2.0."""
RECORDING_SUFFIXES = (AEDAT_SUFFIX, AEDAT4_SUFFIX, JAER_SUFFIX)
AEDAT2_VERSION = b"#!AER-DAT2"
"""The first bytes of an AEDAT 2.0 file; other ``.aedat`` files are read as AEDAT 3.1."""


def is_aedat2(path: Path) -> bool:
    """Whether a ``.aedat`` file is jAER's AEDAT 2.0 (by its first line); False when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(len(AEDAT2_VERSION)) == AEDAT2_VERSION
    except OSError:
        return False


def open_source(spec: str | Path, on_reset: OnReset = "error") -> EventSource:
    """Open a source from a user's string.

    ``camera`` opens the first camera found, ``camera:SERIAL`` a given one, ``tcp://HOST:PORT``
    a DV event stream (dv-processing's network server, e.g. DV's ``Network TCP server`` output);
    a ``.aedat`` path an AEDAT 2.0 (jAER) or AEDAT 3.1 (DVS Gesture) file, told apart by its first
    line (jAER's ``.dat`` files when they are AEDAT 2.0), a ``.aedat4`` path a DV recording.
    ``on_reset`` says what a recording's timestamp resets do (see :mod:`livegesture.sources.resets`).
    """
    text = str(spec)
    if text == CAMERA_PREFIX or text.startswith(CAMERA_PREFIX + ":"):
        from livegesture.sources.camera import CameraSource

        serial = text.partition(":")[2] or None
        return CameraSource(serial=serial)
    if text.startswith(NETWORK_PREFIX):
        from livegesture.sources.network import NetworkSource

        return NetworkSource.from_address(text)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (AEDAT_SUFFIX, JAER_SUFFIX) and is_aedat2(path):
        from livegesture.sources.aedat2 import Aedat2Recording

        return Aedat2Recording(path, on_reset=on_reset)
    if suffix == AEDAT_SUFFIX:
        from livegesture.sources.aedat3 import Aedat3Recording

        return Aedat3Recording(path, on_reset=on_reset)
    if suffix == AEDAT4_SUFFIX:
        from livegesture.sources.aedat4 import Aedat4Recording

        return Aedat4Recording(path, on_reset=on_reset)
    raise EventFormatError(path, "unknown recording type: expected .aedat (AEDAT 2.0 or 3.1), .aedat4, "
                                 ".dat (AEDAT 2.0), 'camera' or 'tcp://HOST:PORT'")


@dataclass(frozen=True)
class RecordingEvents:
    """All events of a recording, its sensor size and the timestamp resets handled."""

    events: np.ndarray
    sensor_size: SensorSize
    resets: tuple[TimestampReset, ...] = ()


def read_recording(path: str | Path, on_reset: OnReset = "error") -> RecordingEvents:
    """All events of a recording file (AEDAT 2.0, 3.1 or aedat4), read whole."""
    with open_source(path, on_reset) as source:
        if isinstance(source, InMemoryRecording):  # one array already: no batches to join again
            events = source.events
        else:
            batches = list(source)
            events = np.concatenate(batches) if batches else empty_events()
        return RecordingEvents(events, source.sensor_size, getattr(source, "resets", ()))


__all__ = ["EventSource", "RecordingEvents", "open_source", "read_recording"]
