"""Sensor geometry: what part of a sensor the network sees, and how it is mapped to its field.

The nets are trained on DVS128 frames: a 128x128 field, resized by the reference transform
(:mod:`livegesture.integrate`) to the 63x63 network input. Other sensors keep that field:

- a square region of interest (ROI) of the sensor, ``x``, ``y`` (its top-left pixel) and
  ``side``, centred and as large as the sensor's shorter side by default, is mapped onto the
  128x128 field by integer coordinate scaling, ``x' = (x - x0) * 128 // side`` (the same for
  y): every pixel of the ROI lands on exactly one field pixel, so every event inside it counts
  (no row or column is skipped, as a bilinear resize of the whole sensor to 63x63 would skip
  most of them), and the aspect ratio is kept;
- events outside the ROI are dropped and counted.

A 128x128 sensor with its whole area as ROI is the identity: its events reach the reference
transform unchanged, bit for bit as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livegesture.events import DVS128_SIZE, LivegestureError, SensorSize
from livegesture.integrate import NET_INPUT_SIZE, integrate_sample

FIELD_SIZE: SensorSize = DVS128_SIZE
"""The field the nets were trained on (DVS128's sensor)."""
FIELD_SIDE = FIELD_SIZE[0]


class GeometryError(LivegestureError, ValueError):
    """A region of interest that does not fit the sensor; the message says how."""


@dataclass(frozen=True)
class RegionOfInterest:
    """A square of the sensor: top-left pixel ``(x, y)`` and ``side`` in sensor pixels."""

    x: int
    y: int
    side: int

    @classmethod
    def centered(cls, sensor_size: SensorSize) -> RegionOfInterest:
        """The largest square, centred (the default)."""
        width, height = sensor_size
        side = min(width, height)
        return cls((width - side) // 2, (height - side) // 2, side)

    @classmethod
    def of(cls, values: tuple[int, ...] | list[int], sensor_size: SensorSize) -> RegionOfInterest:
        """``(x, y, side)`` as a setting holds it (empty: :meth:`centered`), checked against the sensor."""
        if not values:
            return cls.centered(sensor_size)
        if len(values) != 3:
            raise GeometryError(f"a region of interest is X Y SIDE, got {list(values)}")
        roi = cls(*(int(v) for v in values))
        width, height = sensor_size
        if roi.side < 1 or roi.x < 0 or roi.y < 0 or roi.x + roi.side > width or roi.y + roi.side > height:
            raise GeometryError(f"region of interest x={roi.x}, y={roi.y}, side={roi.side} does not fit the "
                                f"{width}x{height} sensor (x + side <= {width}, y + side <= {height})")
        return roi

    def describe(self, sensor_size: SensorSize) -> str:
        """One line for ``info`` and the window."""
        width, height = sensor_size
        if (width, height) == FIELD_SIZE and self == RegionOfInterest(0, 0, FIELD_SIDE):
            return f"the whole {width}x{height} sensor, as trained"
        return (f"{self.side}x{self.side} at ({self.x}, {self.y}) of the {width}x{height} sensor, "
                f"scaled {self.side}:{FIELD_SIDE} to the {FIELD_SIDE}x{FIELD_SIDE} field; events outside dropped")


def _axis_map(roi_start: int, side: int, sensor_extent: int) -> np.ndarray:
    """Field coordinate of every sensor coordinate of one axis, -1 outside the ROI."""
    mapped = np.full(sensor_extent, -1, dtype=np.int64)
    inside = np.arange(side)
    mapped[roi_start:roi_start + side] = inside * FIELD_SIDE // side
    return mapped


class FieldMapping:
    """Sensor events -> events of the 128x128 field (see the module docstring); counts the
    events dropped outside the ROI in ``events_outside``."""

    def __init__(self, sensor_size: SensorSize, roi: tuple[int, ...] | list[int] = ()) -> None:
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        self.roi = RegionOfInterest.of(roi, self.sensor_size)
        self.identity = self.sensor_size == FIELD_SIZE and self.roi == RegionOfInterest(0, 0, FIELD_SIDE)
        self._x = _axis_map(self.roi.x, self.roi.side, self.sensor_size[0])
        self._y = _axis_map(self.roi.y, self.roi.side, self.sensor_size[1])
        self.events_outside = 0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """The events inside the ROI with field coordinates (the batch itself for the identity)."""
        if self.identity or not len(events):
            return events
        x, y = self._x[events["x"]], self._y[events["y"]]
        inside = (x >= 0) & (y >= 0)
        mapped = events[inside]
        mapped["x"] = x[inside]
        mapped["y"] = y[inside]
        self.events_outside += len(events) - len(mapped)
        return mapped

    def describe(self) -> str:
        return self.roi.describe(self.sensor_size)


def integrate_field(events: np.ndarray, frames: int, sensor_size: SensorSize, roi: tuple[int, ...] | list[int] = (),
                    out_size: int = NET_INPUT_SIZE) -> np.ndarray:
    """The reference transform of one sample of any sensor: its ROI mapped to the field, then
    :func:`~livegesture.integrate.integrate_sample` on the field."""
    return integrate_sample(FieldMapping(sensor_size, roi)(events), frames, FIELD_SIZE, out_size)
