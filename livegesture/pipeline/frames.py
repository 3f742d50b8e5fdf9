"""The integrator stage: optional noise filter, then the sliding equal-count integrator."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from livegesture.events import SensorSize
from livegesture.filters import BackgroundActivityFilter
from livegesture.integrate import Frame, SlidingIntegrator
from livegesture.pipeline.settings import PipelineSettings


def integrator_settings(settings: PipelineSettings) -> tuple[int, int, bool]:
    """The settings the integrator stage depends on: a change rebuilds it."""
    return settings.events_per_frame, settings.frames_per_window, settings.noise_filter


class FrameBuilder:
    """Event batches -> frames, as :class:`SlidingIntegrator` with the noise filter in front when
    ``settings.noise_filter``. A rebuilt stage (:meth:`rebuilt`) continues the frame numbering
    and the counters."""

    def __init__(self, sensor_size: SensorSize, settings: PipelineSettings, first_index: int = 0) -> None:
        self.sensor_size = sensor_size
        self.key = integrator_settings(settings)
        self.integrator = SlidingIntegrator(sensor_size, settings.events_per_frame, settings.frames_per_window)
        self.noise_filter = BackgroundActivityFilter(sensor_size) if settings.noise_filter else None
        self.first_index = first_index
        self.next_index = first_index
        """Index of the next frame."""
        self.events_in = 0
        """Events received."""
        self.events_integrated = 0
        """Events that passed the noise filter into the integrator (all of them without the filter)."""

    @property
    def pending_events(self) -> int:
        """Events (after the filter) received towards the next, incomplete frame."""
        return self.integrator.pending_events

    def push(self, events: np.ndarray) -> list[Frame]:
        """Filter and integrate one batch; the frames it completed, in order."""
        self.events_in += len(events)
        if self.noise_filter is not None:
            events = self.noise_filter(events)
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
