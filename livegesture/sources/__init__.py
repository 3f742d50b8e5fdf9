"""Event sources: recordings (AEDAT 3.1, aedat4), the live camera, and paced replay.

All of them implement :class:`~livegesture.sources.base.EventSource`.
"""

from __future__ import annotations

from pathlib import Path

from livegesture.events import EventFormatError
from livegesture.sources.base import EventSource

CAMERA_PREFIX = "camera"


def open_source(spec: str | Path) -> EventSource:
    """Open a source from a user's string.

    ``camera`` opens the first camera found, ``camera:SERIAL`` a given one; a
    ``.aedat`` path an AEDAT 3.1 file (DVS Gesture), a ``.aedat4`` path a DV recording.
    """
    text = str(spec)
    if text == CAMERA_PREFIX or text.startswith(CAMERA_PREFIX + ":"):
        from livegesture.sources.camera import CameraSource

        serial = text.partition(":")[2] or None
        return CameraSource(serial=serial)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix == ".aedat":
        from livegesture.sources.aedat3 import Aedat3Recording

        return Aedat3Recording(path)
    if suffix == ".aedat4":
        from livegesture.sources.aedat4 import Aedat4Recording

        return Aedat4Recording(path)
    raise EventFormatError(path, "unknown recording type: expected .aedat (AEDAT 3.1), .aedat4, or 'camera'")


__all__ = ["EventSource", "open_source"]
