"""The two pictures of the window as pure numpy: the decaying ON/OFF event overlay at sensor
resolution and the binarized frame the network sees. No Qt here.

Both are RGB ``(H, W, 3)`` uint8 on a dark background: ON events green, OFF events red
(a pixel with both is yellow).
"""

from __future__ import annotations

import numpy as np

from livegesture.events import SensorSize
from livegesture.integrate import OFF, ON, occupancy

BACKGROUND_RGB = np.array((14, 16, 22), dtype=np.float32)
ON_RGB = np.array((60, 230, 90), dtype=np.float32)
OFF_RGB = np.array((240, 60, 60), dtype=np.float32)
OVERLAY_HALF_LIFE_US = 40_000
"""Event time after which an overlay pixel has faded to half its brightness."""


def polarity_rgb(off: np.ndarray, on: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` from OFF and ON intensities in [0, 1] of shape ``(H, W)``:
    the background plus each polarity's colour in proportion to its intensity, clipped."""
    rgb = (BACKGROUND_RGB + off[..., None] * (OFF_RGB - BACKGROUND_RGB)
           + on[..., None] * (ON_RGB - BACKGROUND_RGB))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def frame_rgb(frame: np.ndarray) -> np.ndarray:
    """RGB of a binarized ``(2, N, N)`` network input frame (channel 0 OFF, channel 1 ON)."""
    return polarity_rgb(frame[OFF].astype(np.float32), frame[ON].astype(np.float32))


def decay_factor(elapsed_us: int, half_life_us: int = OVERLAY_HALF_LIFE_US) -> float:
    """Brightness kept after ``elapsed_us`` of event time (1 when time did not advance)."""
    return float(0.5 ** (max(elapsed_us, 0) / half_life_us))


class EventOverlay:
    """The live events at sensor resolution, fading with event time.

    Each :meth:`add` first dims every pixel by :func:`decay_factor` of the event time
    since the previous batch's last event, then lights the pixels of the new events at
    full brightness. Paused replays therefore stay on screen. Memory: one ``(2, H, W)``
    float32 array.
    """

    def __init__(self, sensor_size: SensorSize, half_life_us: int = OVERLAY_HALF_LIFE_US) -> None:
        self.sensor_size = sensor_size
        self.half_life_us = half_life_us
        width, height = sensor_size
        self.intensity = np.zeros((2, height, width), dtype=np.float32)
        self._last_t: int | None = None

    def add(self, events: np.ndarray) -> None:
        """Fade by the event time since the last batch, then light ``events`` (time-sorted)."""
        if events.size == 0:
            return
        t_last = int(events["t"][-1])
        if self._last_t is not None:
            self.intensity *= decay_factor(t_last - self._last_t, self.half_life_us)
        self._last_t = t_last
        np.maximum(self.intensity, occupancy(events, self.sensor_size), out=self.intensity)

    def clear(self) -> None:
        self.intensity[:] = 0
        self._last_t = None

    def rgb(self) -> np.ndarray:
        """The overlay as RGB uint8 ``(H, W, 3)``, row 0 = sensor row 0."""
        return polarity_rgb(self.intensity[OFF], self.intensity[ON])
