"""Event filters applied before integration, wrapping dv-processing's."""

from __future__ import annotations

from datetime import timedelta

import dv_processing as dv
import numpy as np

from livegesture.events import SensorSize, empty_events
from livegesture.sources.aedat4 import from_event_store, to_event_store

DEFAULT_BACKGROUND_ACTIVITY_US = 2000
"""dv-processing's default support window of the background-activity filter."""


class BackgroundActivityFilter:
    """dv-processing's ``BackgroundActivityNoiseFilter`` over numpy event batches.

    An event passes when one of its 8 neighbouring pixels had an event in the
    preceding ``duration_us``; isolated noise events are removed. State carries
    across batches. The numpy <-> ``EventStore`` conversion limits it to a few
    million events/s, well above a DVS128's gesture rates.
    """

    def __init__(self, sensor_size: SensorSize, duration_us: int = DEFAULT_BACKGROUND_ACTIVITY_US) -> None:
        if duration_us <= 0:
            raise ValueError(f"duration_us must be positive, got {duration_us}")
        self.sensor_size = sensor_size
        self.duration_us = duration_us
        self._filter = dv.noise.BackgroundActivityNoiseFilter(
            tuple(sensor_size), backgroundActivityDuration=timedelta(microseconds=duration_us))
        self.events_in = 0
        self.events_out = 0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """The events of this batch that pass the filter (validated, sorted input)."""
        if events.size == 0:
            return empty_events()
        self._filter.accept(to_event_store(events))
        kept = from_event_store(self._filter.generateEvents())
        self.events_in += len(events)
        self.events_out += len(kept)
        return kept
