"""A DVS pixel-array emulator, the sensor's noise, and the lighting conditions of DVS Gesture.

Each pixel compares its log intensity with the level memorised at its last event and emits
ON (1) / OFF (0) events each time the difference crosses its contrast threshold (per-pixel
mismatch around the camera's mean). The log intensity is known at sample times (rendered
frames, and every quarter period of a flickering light); between samples it is linear, so the
``k``-th crossing of a sample interval gets the timestamp where the line crosses
``reference + k * threshold``, to the microsecond. A pixel is blind for a refractory period
after each event (the crossings it misses are lost, its reference still follows the light).

Noise is added as in a real DVS128: background-activity events (a Poisson process per pixel,
mostly ON) and a few hot pixels that fire regularly whatever the scene.

Lighting: mains-powered fluorescent tubes flicker at twice the mains frequency. The
photoreceptor is a low-pass filter whose cut-off grows with the light, so only bright pixels
follow the flicker: its log amplitude in a pixel is ``depth / sqrt(1 + (f / fc)^2)`` with
``fc`` proportional to the pixel's intensity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from livegesture.events import DVS128_SIZE, EVENT_DTYPE, SensorSize, make_events
from livegesture.synth.body import Illumination

MAINS_HZ = 60
"""IBM's lab (where DVS Gesture was recorded) is on 60 Hz mains: fluorescent light flickers at 120 Hz."""
US_PER_S = 1_000_000


@dataclass(frozen=True)
class Lighting:
    """A lighting condition: how it lights the scene and what it does to the sensor."""

    name: str
    illumination: Illumination
    flicker_depth: float
    """Log-intensity amplitude of the flicker (at twice the mains frequency) in a pixel fast enough to follow it."""
    noise_scale: float
    """Multiplies the sensor's background-activity rate."""
    dark: float
    """Dark-current floor in intensity units: shadows lose contrast in dim light."""


LIGHTINGS: dict[str, Lighting] = {
    light.name: light
    for light in (
        Lighting("fluorescent", Illumination(level=0.8, ambient=0.6, direction=(0.0, -0.8, 0.6), gradient=0.05,
                                             lamp=12.0), flicker_depth=0.3, noise_scale=1.0, dark=0.01),
        Lighting("fluorescent_led", Illumination(level=1.0, ambient=0.55, direction=(0.2, -0.7, 0.7), gradient=0.1,
                                                 lamp=12.0), flicker_depth=0.27, noise_scale=0.9, dark=0.01),
        Lighting("lab", Illumination(level=0.35, ambient=0.5, direction=(0.5, -0.5, 0.7), gradient=0.25,
                                     lamp=20.0), flicker_depth=0.0, noise_scale=1.8, dark=0.02),
        Lighting("led", Illumination(level=1.2, ambient=0.35, direction=(-0.3, -0.6, 0.75), gradient=0.15,
                                     lamp=10.0), flicker_depth=0.0, noise_scale=0.8, dark=0.01),
        Lighting("natural", Illumination(level=1.5, ambient=0.4, direction=(-0.8, -0.3, 0.5), gradient=0.35,
                                         lamp=0.8), flicker_depth=0.0, noise_scale=0.6, dark=0.008),
    )
}
"""The five lighting conditions of DVS Gesture's file names."""


def lighting(name: str) -> Lighting:
    """A lighting condition by name; a clear error for unknown names."""
    try:
        return LIGHTINGS[name]
    except KeyError:
        raise ValueError(f"unknown lighting {name!r}: expected one of {', '.join(LIGHTINGS)}") from None


def vary_lighting(light: Lighting, rng: np.random.Generator) -> Lighting:
    """The same condition on another day: level, direction and gradient jittered."""
    ill = light.illumination
    direction = np.asarray(ill.direction) + rng.normal(0, 0.15, 3)
    return replace(light, illumination=replace(
        ill, level=ill.level * rng.uniform(0.8, 1.25), direction=tuple(float(c) for c in direction),
        gradient=ill.gradient * rng.uniform(0.6, 1.4)))


@dataclass(frozen=True)
class SensorParams:
    """Properties of a DVS128; the defaults are typical of one at its default biases."""

    on_threshold: float = 0.24
    """Mean ON contrast threshold, log units (DVS128: about 15-30 %)."""
    off_threshold: float = 0.27
    threshold_mismatch: float = 0.03
    """Standard deviation of a pixel's threshold around the mean."""
    refractory_us: int = 700
    background_rate_hz: float = 0.1
    """Background-activity events per pixel per second (before the lighting's scale)."""
    background_on_fraction: float = 0.7
    hot_pixels: int = 5
    hot_rate_hz: tuple[float, float] = (20.0, 200.0)
    cutoff_hz: float = 40.0
    """Photoreceptor cut-off at intensity 1, a white wall in office light (it scales with the intensity):
    at 100-120 Hz only lamps and reflections follow a flicker fully, a lit wall by about a seventh."""


@dataclass(frozen=True, eq=False)
class Sensor:
    """One camera: its per-pixel thresholds and hot pixels, fixed by a seed."""

    size: SensorSize
    params: SensorParams
    on_threshold: np.ndarray = field(repr=False)
    off_threshold: np.ndarray = field(repr=False)
    hot_index: np.ndarray = field(repr=False)
    """Flat pixel index of each hot pixel."""
    hot_rate: np.ndarray = field(repr=False)
    hot_polarity: np.ndarray = field(repr=False)


def make_sensor(rng: np.random.Generator, params: SensorParams = SensorParams(),
                size: SensorSize = DVS128_SIZE) -> Sensor:
    width, height = size
    shape = (height, width)
    floor = 0.3 * min(params.on_threshold, params.off_threshold)

    def thresholds(mean: float) -> np.ndarray:
        return np.maximum(rng.normal(mean, params.threshold_mismatch, shape), floor).astype(np.float32)

    on, off = thresholds(params.on_threshold), thresholds(params.off_threshold)
    hot = rng.choice(width * height, params.hot_pixels, replace=False)
    return Sensor(size=size, params=params, on_threshold=on, off_threshold=off, hot_index=hot,
                  hot_rate=rng.uniform(*params.hot_rate_hz, params.hot_pixels),
                  hot_polarity=rng.integers(0, 2, params.hot_pixels).astype(np.uint8))


def flicker_amplitude(intensity: np.ndarray, light: Lighting, sensor: Sensor, mains_hz: float) -> np.ndarray:
    """Per-pixel log amplitude of the light's flicker after the photoreceptor's low-pass filter."""
    if light.flicker_depth == 0:
        return np.zeros_like(intensity)
    ratio = (2.0 * mains_hz / sensor.params.cutoff_hz) / np.maximum(intensity, 1e-6)
    return (light.flicker_depth / np.sqrt(1.0 + ratio * ratio)).astype(np.float32)


class DvsEmulator:
    """Turns log-intensity samples into events; feed samples in time order, then :meth:`events`.

    :meth:`feed` only updates the pixels' memorised levels and notes which pixels crossed how
    many thresholds; the event timestamps are worked out for many samples at once (numpy's
    per-call cost is what limits speed here). The refractory period is exact within a sample
    interval; across intervals a pixel's crossings are checked against its previous
    interval's last crossing.
    """

    FLUSH_SAMPLES = 64
    """Samples whose crossings are turned into events together."""

    def __init__(self, sensor: Sensor, t_us: int, level: np.ndarray, rng: np.random.Generator,
                 swing: np.ndarray | None = None) -> None:
        """Start at time ``t_us`` with log intensity ``level`` ``(height, width)``.

        Each pixel's memorised level starts at a random point inside its dead band, as in a
        sensor that has been running for a while; ``swing`` (per pixel) keeps that point at
        least so far from the thresholds, for a level known to oscillate by that much (a
        flickering light), which a running sensor would have settled to.
        """
        self.sensor = sensor
        self._on = sensor.on_threshold.reshape(-1)
        self._off = sensor.off_threshold.reshape(-1)
        self._neg_off = -self._off
        flat = level.reshape(-1).astype(np.float32, copy=True)
        margin = np.zeros_like(flat) if swing is None else np.minimum(swing.reshape(-1), 0.499 * (self._on + self._off))
        inside = rng.uniform(0.001, 0.999, flat.shape).astype(np.float32)
        self._ref = flat - (margin - self._off + inside * (self._on + self._off - 2 * margin))
        self._prev = flat
        self._t = int(t_us)
        self._last = np.full(flat.shape, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._pending: list[tuple] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def feed(self, t_us: int, level: np.ndarray) -> None:
        """The log intensity ``(height, width)`` at ``t_us``, later than the previous sample.

        The emulator keeps a reference to ``level`` until the next call: do not modify it.
        """
        level = level.reshape(-1)
        diff = level - self._ref
        crossed = diff >= self._on
        crossed |= diff <= self._neg_off
        index = np.flatnonzero(crossed)
        if index.size:
            change = diff[index]
            on = change > 0
            thr = np.where(on, self._on[index], self._off[index])
            count = (np.abs(change) / thr).astype(np.int64)
            ref = self._ref[index]
            moved = count * thr
            self._ref[index] = np.where(on, ref + moved, ref - moved)
            self._pending.append((self._t, int(t_us), index, self._prev[index], level[index], ref, thr, count, on))
            if len(self._pending) >= self.FLUSH_SAMPLES:
                self._flush()
        self._prev = level
        self._t = int(t_us)

    def _flush(self) -> None:
        """Timestamps of the pending crossings, less those lost to the refractory period."""
        if not self._pending:
            return
        sizes = [len(pending[2]) for pending in self._pending]
        times = [np.repeat(np.array([p[k] for p in self._pending], dtype=np.int64), sizes) for k in (0, 1)]
        columns = times + [np.concatenate(column) for column in list(zip(*self._pending))[2:]]
        self._pending.clear()
        order = np.argsort(columns[2], kind="stable")  # by pixel, then time
        t0, t1, index, start, end, ref, thr, count, on = (column[order] for column in columns)
        sign = np.where(on, np.float32(1), np.float32(-1))
        slope = np.maximum(sign * (end - start), np.float32(1e-9))  # log change over the interval, > 0
        first = np.minimum((sign * (ref - start) + thr) / slope, np.float32(1))  # fraction of the interval
        dt = (t1 - t0).astype(np.float64)
        t_first = t0 + first * dt
        delta = np.maximum(thr / slope * dt, 1e-3)  # us between successive crossings
        refractory = float(self.sensor.params.refractory_us)
        previous = self._last[index].astype(np.float64)
        same_pixel = np.flatnonzero(index[1:] == index[:-1]) + 1
        previous[same_pixel] = t_first[same_pixel - 1] + (count[same_pixel - 1] - 1) * delta[same_pixel - 1]
        step = np.maximum(np.ceil(refractory / delta), 1.0)
        skip = np.maximum(np.ceil((previous + refractory - t_first) / delta), 0.0)
        kept = np.where(skip < count, 1 + (count - 1 - skip) // step, 0).astype(np.int64)
        fired = np.flatnonzero(kept)
        if not fired.size:
            return
        kept = kept[fired]
        owner = np.repeat(fired, kept)
        offsets = np.cumsum(kept) - kept
        nth = np.arange(owner.size) - np.repeat(offsets, kept)
        times = np.rint(t_first[owner] + (skip[owner] + nth * step[owner]) * delta[owner]).astype(np.int64)
        np.minimum(times, t1[owner], out=times)
        pixels = index[owner]
        ends = np.r_[np.flatnonzero(pixels[1:] != pixels[:-1]), pixels.size - 1]
        self._last[pixels[ends]] = times[ends]
        self._chunks.append((times, pixels, on[owner].view(np.uint8)))

    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All events so far as ``(t, flat pixel index, p)``, not sorted."""
        self._flush()
        if not self._chunks:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
        return tuple(np.concatenate(column) for column in zip(*self._chunks))  # type: ignore[return-value]


def noise_events(sensor: Sensor, light: Lighting, t0_us: int, t1_us: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background activity and hot-pixel events over ``[t0_us, t1_us)`` as ``(t, flat index, p)``."""
    width, height = sensor.size
    params = sensor.params
    span_s = (t1_us - t0_us) / US_PER_S
    n_ba = rng.poisson(params.background_rate_hz * light.noise_scale * width * height * span_s)
    t = [rng.integers(t0_us, t1_us, n_ba)]
    index = [rng.integers(0, width * height, n_ba)]
    polarity = [(rng.random(n_ba) < params.background_on_fraction).astype(np.uint8)]
    for pixel, rate, p in zip(sensor.hot_index, sensor.hot_rate, sensor.hot_polarity):
        # Nearly regular firing: gamma-distributed intervals (shape 8) around 1 / rate.
        n = int(rate * span_s * 1.3) + 8
        times = t0_us + np.cumsum(rng.gamma(8.0, 1.0 / (8.0 * rate), n)) * US_PER_S
        times = times[times < t1_us].astype(np.int64)
        t.append(times)
        index.append(np.full(times.size, pixel, dtype=np.int64))
        polarity.append(np.full(times.size, p, dtype=np.uint8))
    return np.concatenate(t), np.concatenate(index), np.concatenate(polarity)


def to_events(t: np.ndarray, index: np.ndarray, p: np.ndarray, size: SensorSize) -> np.ndarray:
    """Columns -> a time-sorted event array (stable: ties keep their order)."""
    order = np.argsort(t, kind="stable")
    width = size[0]
    index = index[order]
    return make_events(t[order], (index % width).astype(np.uint16), (index // width).astype(np.uint16), p[order]) \
        if t.size else np.zeros(0, dtype=EVENT_DTYPE)
