"""The integrator stage: optional noise filter, the sensor's region of interest mapped to the
network's field, then the sliding equal-count integrator."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from livegesture.events import SensorSize
from livegesture.filters import NoiseFilter
from livegesture.geometry import FIELD_SIZE, FieldMapping, GeometryError, RegionOfInterest
from livegesture.integrate import Frame, SlidingIntegrator
from livegesture.pipeline.settings import PipelineSettings, SettingsError


def check_roi(roi: tuple[int, ...] | list[int], sensor_size: SensorSize) -> RegionOfInterest:
    """The region of interest ``roi`` names on this sensor; :class:`SettingsError` when it does not fit."""
    try:
        return RegionOfInterest.of(roi, sensor_size)
    except GeometryError as err:
        raise SettingsError(f"setting roi: {err}") from None


def integrator_settings(settings: PipelineSettings) -> tuple:
    """The settings the integrator stage depends on: a change rebuilds it."""
    return (settings.events_per_frame, settings.frames_per_window, settings.noise_filter, settings.noise_filter_kind,
            settings.noise_filter_window_us, settings.roi)


class FrameBuilder:
    """Event batches -> frames: the noise filter (at sensor resolution, when ``settings.noise_filter``),
    then :class:`~livegesture.geometry.FieldMapping` (``settings.roi``; the identity on a DVS128),
    then :class:`SlidingIntegrator` on the 128x128 field. A rebuilt stage (:meth:`rebuilt`)
    continues the frame numbering and the counters."""

    def __init__(self, sensor_size: SensorSize, settings: PipelineSettings, first_index: int = 0) -> None:
        self.sensor_size = sensor_size
        self.key = integrator_settings(settings)
        self.field = FieldMapping(sensor_size, settings.roi)
        self.integrator = SlidingIntegrator(FIELD_SIZE, settings.events_per_frame, settings.frames_per_window)
        self.noise_filter = (NoiseFilter(sensor_size, settings.noise_filter_kind, settings.noise_filter_window_us)
                             if settings.noise_filter else None)
        self.first_index = first_index
        self.next_index = first_index
        """Index of the next frame."""
        self.events_in = 0
        """Events received."""
        self.events_integrated = 0
        """Events that passed the noise filter and lie in the region of interest: those integrated."""

    @property
    def pending_events(self) -> int:
        """Events (after the filter) received towards the next, incomplete frame."""
        return self.integrator.pending_events

    @property
    def filter_kept(self) -> float | None:
        """Share of its events the noise filter kept so far (None with the filter off or before any event)."""
        noise = self.noise_filter
        return noise.events_out / noise.events_in if noise is not None and noise.events_in else None

    def push(self, events: np.ndarray) -> list[Frame]:
        """Filter, map and integrate one batch; the frames it completed, in order."""
        self.events_in += len(events)
        if self.noise_filter is not None:
            events = self.noise_filter(events)
        events = self.field(events)
        self.events_integrated += len(events)
        frames = self.integrator.push(events)
        if self.first_index:
            frames = [replace(frame, index=frame.index + self.first_index) for frame in frames]
        self.next_index += len(frames)
        return frames

    def rebuilt(self, settings: PipelineSettings) -> FrameBuilder:
        """This stage for new ``settings``: itself when nothing it uses changed, else a fresh one
        (the partial frame is dropped) that continues the frame numbering."""
        if integrator_settings(settings) == self.key:
            return self
        fresh = FrameBuilder(self.sensor_size, settings, self.next_index)
        fresh.events_in, fresh.events_integrated = self.events_in, self.events_integrated
        return fresh
