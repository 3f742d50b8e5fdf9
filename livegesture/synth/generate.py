"""Labelled gesture clips and continuous sessions, deterministic from a seed.

Everything random comes from :class:`numpy.random.SeedSequence` keyed by what it belongs to,
so any clip can be made alone, in any process, in any order, with the same bytes:

* the camera (thresholds, hot pixels): ``(seed, CAMERA)``;
* a user (body, clothes, way of moving): ``(seed, USER, user)``;
* a session, one user under one lighting: ``(seed, SESSION, user, lighting, 0)`` for the gesture
  order, ``(..., 1)`` for the room and the light;
* a clip, one gesture (timing, jitter, sensor noise): ``(seed, CLIP, user, lighting, class, repetition)``.

A clip is: standing (nearly still, or fidgeting with ``timing.idle_actions``), raising the arms,
the labelled gesture, lowering them; :class:`~livegesture.synth.gestures.TimingModel` says how
long each part lasts. A session is its clips back to back, each class ``repetitions`` times in a random order, as in
DVS Gesture's one recording per user and lighting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from livegesture.events import DVS128_SIZE, EVENT_DTYPE, SensorSize
from livegesture.sources.labels import NUM_CLASSES, GestureSegment
from livegesture.synth.body import (
    Appearance,
    BodyShape,
    PoseTrack,
    Renderer,
    sample_appearance,
    sample_backdrop,
    sample_body,
)
from livegesture.synth.dvs import (
    LIGHTINGS,
    MAINS_HZ,
    US_PER_S,
    DvsEmulator,
    Lighting,
    Sensor,
    SensorParams,
    flicker_amplitude,
    lighting,
    make_sensor,
    noise_events,
    to_events,
    vary_lighting,
)
from livegesture.synth.gestures import (
    ClipTiming,
    MotionStyle,
    TimingModel,
    clip_track,
    sample_style,
    sample_timing,
)

CAMERA, USER, SESSION, CLIP = range(4)
"""First element of every seed's key: what the random numbers are for."""
RENDER_BATCH = 16
"""Frames rendered per call: numpy's per-call cost shared out, bounding boxes still tight."""


@dataclass(frozen=True)
class SynthSettings:
    """What every clip of a data set shares."""

    max_step_px: float = 1.0
    """A frame is rendered whenever some body part has moved this far (pixels) since the last one."""
    min_frame_us: int = 1_000
    """Time resolution of the motion, and the shortest time between frames."""
    max_frame_us: int = 20_000
    """The longest time between frames (when nothing moves)."""
    timing: TimingModel = TimingModel()
    """How long gestures and pauses last (default the short timing: gestures 3.5-5 s; DVS Gesture's
    are 6-10 s, :data:`~livegesture.synth.gestures.DVSGESTURE_TIMING`)."""
    mains_hz: float = MAINS_HZ
    sensor: SensorParams = SensorParams()
    sensor_size: SensorSize = DVS128_SIZE

    def __post_init__(self) -> None:
        if not 0 < self.min_frame_us <= self.max_frame_us:
            raise ValueError(f"need 0 < min_frame_us <= max_frame_us, got {self.min_frame_us}, {self.max_frame_us}")
        if self.max_step_px <= 0:
            raise ValueError(f"max_step_px must be positive, got {self.max_step_px}")



@dataclass(frozen=True)
class Subject:
    """One synthetic person."""

    user: int
    body: BodyShape
    look: Appearance
    style: MotionStyle


@dataclass(frozen=True)
class ClipJob:
    """Everything that determines one clip."""

    seed: int
    user: int
    lighting: str
    label: int
    repetition: int
    settings: SynthSettings = SynthSettings()


@dataclass(frozen=True, eq=False)
class Clip:
    """A clip's events (timestamps from the clip's start) and where its gesture lies."""

    job: ClipJob
    events: np.ndarray
    duration_us: int
    gesture_start_us: int
    gesture_end_us: int


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


@lru_cache(maxsize=4)
def camera(seed: int, params: SensorParams = SensorParams(), size: SensorSize = DVS128_SIZE) -> Sensor:
    """The data set's one camera (DVS Gesture was recorded with a single DVS128)."""
    return make_sensor(_rng(seed, CAMERA), params, size)


def subject(seed: int, user: int, size: SensorSize = DVS128_SIZE) -> Subject:
    """User ``user``'s body, clothes and way of moving."""
    rng = _rng(seed, USER, user)
    return Subject(user, sample_body(rng, size), sample_appearance(rng), sample_style(rng))


def _lighting_index(name: str) -> int:
    lighting(name)  # a clear error for unknown names
    return list(LIGHTINGS).index(name)


def session_order(seed: int, user: int, lighting_name: str, repetitions: int = 1) -> list[tuple[int, int]]:
    """``(class, repetition)`` in recording order: every class ``repetitions`` times, shuffled."""
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    items = [(label, rep) for rep in range(repetitions) for label in range(NUM_CLASSES)]
    rng = _rng(seed, SESSION, user, _lighting_index(lighting_name), 0)
    return [items[i] for i in rng.permutation(len(items))]


def numbered(labels: list[int]) -> list[tuple[int, int]]:
    """``(class, repetition)`` for a given order of classes: the n-th time a class occurs is repetition n."""
    seen: dict[int, int] = {}
    order = []
    for label in labels:
        if not 0 <= label < NUM_CLASSES:
            raise ValueError(f"unknown gesture class {label}: expected 0..{NUM_CLASSES - 1}")
        order.append((label, seen.get(label, 0)))
        seen[label] = seen.get(label, 0) + 1
    return order


@dataclass(frozen=True, eq=False)
class ClipScene:
    """A clip before emulation: the scene, the motion at every millisecond, the sensor."""

    renderer: Renderer
    track: PoseTrack
    """The pose every ``settings.min_frame_us``."""
    times_us: np.ndarray
    light: Lighting
    sensor: Sensor
    timing: ClipTiming
    rng: np.random.Generator
    """The clip's generator, where the motion left it (the emulator and the noise go on with it)."""


def prepare_clip(job: ClipJob) -> ClipScene:
    """Everything about a clip that comes before the DVS: who, where, which light, which motion."""
    settings = job.settings
    _check_seed(job.seed)
    if not 0 <= job.label < NUM_CLASSES:
        raise ValueError(f"unknown gesture class {job.label}: expected 0..{NUM_CLASSES - 1}")
    light_index = _lighting_index(job.lighting)
    person = subject(job.seed, job.user, settings.sensor_size)
    scene_rng = _rng(job.seed, SESSION, job.user, light_index, 1)
    backdrop = sample_backdrop(scene_rng)
    light = vary_lighting(lighting(job.lighting), scene_rng)
    rng = _rng(job.seed, CLIP, job.user, light_index, job.label, job.repetition)
    timing = sample_timing(rng, settings.timing)
    style = person.style
    if settings.timing.speed_spread:
        spread = np.log1p(settings.timing.speed_spread)
        style = replace(style, tempo=style.tempo * float(np.exp(rng.uniform(-spread, spread))))
    times = np.arange(0, int(timing.total * US_PER_S) + settings.min_frame_us, settings.min_frame_us, dtype=np.int64)
    track = clip_track(job.label, timing, times / US_PER_S, person.body, style, rng,
                       idle_actions=settings.timing.idle_actions)
    renderer = Renderer(person.body, person.look, backdrop, light.illumination, settings.sensor_size)
    return ClipScene(renderer, track, times, light, camera(job.seed, settings.sensor, settings.sensor_size),
                     timing, rng)


def generate_clip(job: ClipJob) -> Clip:
    """Render and emulate one clip: the unit of work of every generator here."""
    settings = job.settings
    scene = prepare_clip(job)
    frames = frame_indices(scene.track.motion(), settings.max_step_px, settings.max_frame_us // settings.min_frame_us)
    signal = _emulate(scene.renderer, scene.track.take(frames), scene.times_us[frames], scene.light, scene.sensor,
                      settings, scene.rng)
    duration = int(scene.times_us[-1]) + 1
    noise = noise_events(scene.sensor, scene.light, 0, duration, scene.rng)
    t, index, p = (np.concatenate(pair) for pair in zip(signal, noise))
    return Clip(job, to_events(t, index, p, settings.sensor_size), duration,
                int(round(scene.timing.gesture_start * US_PER_S)), int(round(scene.timing.gesture_end * US_PER_S)))


def frame_indices(motion: np.ndarray, max_step: float, max_gap: int) -> np.ndarray:
    """Which of a finely sampled track's frames to render.

    A frame wherever the accumulated ``motion`` (pixels per fine step) passes another
    ``max_step``, and at least every ``max_gap`` fine steps; always the first and last.
    """
    travelled = np.r_[0.0, np.cumsum(motion)]
    n = len(travelled)
    by_motion = np.flatnonzero(np.diff(np.floor(travelled / max_step))) + 1
    return np.unique(np.r_[0, by_motion, np.arange(0, n, max_gap), n - 1])


def _emulate(renderer: Renderer, track: PoseTrack, frame_t: np.ndarray, light: Lighting, sensor: Sensor,
             settings: SynthSettings, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the frames and feed their log intensity to a DVS emulator.

    Between frames the log intensity is linear in time. A flickering light adds
    ``amplitude * cos(2 pi f t + phase)``, sampled in addition at every quarter period (its
    peaks and zeros), so that the emulator sees the flicker's full swing at exactly ``f``.
    """
    flicker_hz = 2.0 * settings.mains_hz
    flickers = light.flicker_depth > 0
    phase = rng.uniform(0, 2 * np.pi)
    quarters = np.zeros(0, dtype=np.int64)
    if flickers:
        period_us = US_PER_S / flicker_hz
        first = int(np.ceil((frame_t[0] / period_us + phase / (2 * np.pi)) * 4))
        last = int(np.floor((frame_t[-1] / period_us + phase / (2 * np.pi)) * 4))
        quarters = np.rint((np.arange(first, last + 1) / 4 - phase / (2 * np.pi)) * period_us).astype(np.int64)

    def flicker(t_us: int) -> np.float32:
        return np.float32(np.cos(2 * np.pi * flicker_hz * t_us / US_PER_S + phase))

    dark = np.float32(light.dark)
    emulator: DvsEmulator | None = None
    level = amplitude = None
    for lo in range(0, len(track), RENDER_BATCH):
        hi = min(lo + RENDER_BATCH, len(track))
        intensity = renderer.render(track, lo, hi)
        levels = np.log(intensity + dark)
        amplitudes = flicker_amplitude(intensity, light, sensor, settings.mains_hz) if flickers else None
        for i in range(lo, hi):
            new_level, t_new = levels[i - lo], int(frame_t[i])
            new_amplitude = amplitudes[i - lo] if flickers else None
            if emulator is None:
                emulator = (DvsEmulator(sensor, t_new, new_level + new_amplitude * flicker(t_new), rng,
                                        swing=2 * new_amplitude) if flickers
                            else DvsEmulator(sensor, t_new, new_level, rng))
            elif not flickers:
                emulator.feed(t_new, new_level)
            else:
                t_prev = int(frame_t[i - 1])
                a, b = np.searchsorted(quarters, [t_prev + 1, t_new])
                step = new_level - level
                for t_us in quarters[a:b].tolist():
                    sample = step * np.float32((t_us - t_prev) / (t_new - t_prev))
                    sample += level
                    sample += amplitude * flicker(t_us)  # the flicker's reach changes slowly: the last frame's
                    emulator.feed(t_us, sample)
                emulator.feed(t_new, new_level + new_amplitude * flicker(t_new))
            level, amplitude = new_level, new_amplitude
    assert emulator is not None
    return emulator.events()


def assemble(clips: list[Clip], start_us: int = 0) -> tuple[np.ndarray, list[GestureSegment]]:
    """Clips back to back into one recording: its events and its labels."""
    chunks, segments = [], []
    offset = start_us
    for clip in clips:
        shifted = clip.events.copy()
        shifted["t"] += offset
        chunks.append(shifted)
        segments.append(GestureSegment(clip.job.label, offset + clip.gesture_start_us, offset + clip.gesture_end_us))
        offset += clip.duration_us
    events = np.concatenate(chunks) if chunks else np.zeros(0, dtype=EVENT_DTYPE)
    return events, segments
