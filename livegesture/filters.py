"""Event noise filters applied before integration: dv-processing's, over numpy batches."""

from __future__ import annotations

from datetime import timedelta

import dv_processing as dv
import numpy as np

from livegesture.events import SensorSize, empty_events
from livegesture.sources.aedat4 import from_event_store, to_event_store

BACKGROUND_ACTIVITY, FAST_DECAY, K_NEAREST = "background-activity", "fast-decay", "k-nearest"
NOISE_FILTER_KINDS = (BACKGROUND_ACTIVITY, FAST_DECAY, K_NEAREST)
"""dv-processing's ``BackgroundActivityNoiseFilter`` (``backgroundActivityDuration``),
``FastDecayNoiseFilter`` (``halfLife``; its ``subdivisionFactor`` 4 and ``noiseThreshold`` 6
left at dv's defaults) and ``KNoiseFilter`` (``timeDelta``): the time window is the one
parameter each is given."""
DEFAULT_NOISE_WINDOW_US = 20_000
"""The filters' time window. dv's 2 ms default keeps only 14-16 % of the events of real DVS128
walking scenes (6-21 k events/s on 128x128: a pixel's neighbours rarely fire within 2 ms).
``benchmarks/bench_noise.py`` thins the shipped synthetic session to such rates: at 6-18 k
events/s, 20 ms keeps 78-87 % (2 ms: 32-59 %); thinned to 2 k events/s, where 2 ms keeps the
real data's 14 %, 20 ms still keeps 56 %."""


def _make(kind: str, sensor_size: SensorSize, window: timedelta):
    resolution = tuple(sensor_size)
    if kind == BACKGROUND_ACTIVITY:
        return dv.noise.BackgroundActivityNoiseFilter(resolution, backgroundActivityDuration=window)
    if kind == FAST_DECAY:
        return dv.noise.FastDecayNoiseFilter(resolution, halfLife=window)
    if kind == K_NEAREST:
        return dv.noise.KNoiseFilter(resolution, timeDelta=window)
    raise ValueError(f"noise filter kind must be one of {', '.join(NOISE_FILTER_KINDS)}, got {kind!r}")


class NoiseFilter:
    """One of dv-processing's noise filters (:data:`NOISE_FILTER_KINDS`) over numpy event batches.

    The background-activity filter passes an event when one of its 8 neighbouring pixels had an
    event in the preceding ``window_us``; the fast-decay filter when the decaying activity of
    its neighbourhood (half-life ``window_us``) is high enough; the k-nearest filter when enough
    neighbours fired within ``window_us``. State carries across batches; ``events_in`` and
    ``events_out`` count what came in and what passed. The numpy <-> ``EventStore``
    conversion limits it to a few million events/s, well above a DVS128's gesture rates.
    """

    def __init__(self, sensor_size: SensorSize, kind: str = BACKGROUND_ACTIVITY,
                 window_us: int = DEFAULT_NOISE_WINDOW_US) -> None:
        if window_us <= 0:
            raise ValueError(f"window_us must be positive, got {window_us}")
        self.sensor_size = sensor_size
        self.kind = kind
        self.window_us = window_us
        self._filter = _make(kind, sensor_size, timedelta(microseconds=window_us))
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


def thin_to_rate(events: np.ndarray, events_per_s: float, seed: int = 0) -> np.ndarray:
    """A random subset of ``events`` at about ``events_per_s`` over their time span: a sparser
    sensor's stream, for measuring what a filter keeps at real rates."""
    span_s = (int(events["t"][-1]) - int(events["t"][0])) / 1e6 if len(events) > 1 else 0.0
    if span_s <= 0 or len(events) / span_s <= events_per_s:
        return events
    keep = np.random.default_rng(seed).random(len(events)) < events_per_s * span_s / len(events)
    return events[keep]
