"""The synthetic gesture generator: motion signatures in the events, sensor effects, timing, errors.

Each check compares the events with what the motion or the sensor must produce, computed
independently of the generator (centroids, spectra, counts). Clips are short and coarsely
rendered so that the whole file runs in seconds.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from livegesture.events import DVS128_SIZE, validate_events
from livegesture.sources.labels import NUM_CLASSES, read_labels
from livegesture.synth.generate import Clip, ClipJob, SynthSettings, camera, generate_clip, subject
from livegesture.synth.gestures import (
    AIR_GUITAR,
    CLAP,
    LEFT_CCW,
    LEFT_CW,
    LEFT_WAVE,
    RIGHT_CCW,
    RIGHT_CW,
    RIGHT_WAVE,
    DVSGESTURE_TIMING,
    ClipTiming,
    TimingModel,
    idle_motion,
    parse_class,
    sample_timing,
)
from livegesture.synth.writers import make_session

SEED = 7
SHARED_LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dvsgesture_user01_natural_labels.csv"
FAST = SynthSettings(timing=TimingModel(gesture_seconds=(1.5, 1.5)), max_step_px=1.5)
"""Short gestures, coarse frames: enough for one or more cycles of every motion."""
SHORT = SynthSettings(timing=TimingModel(gesture_seconds=(1.0, 1.0)), max_step_px=1.5)
"""For checks over every class."""


@cache
def clip(label: int, user: int = 1, lighting: str = "natural", settings: SynthSettings = FAST) -> Clip:
    return generate_clip(ClipJob(SEED, user, lighting, label, 0, settings))


def gesture_events(c: Clip) -> np.ndarray:
    t = c.events["t"]
    return c.events[(t >= c.gesture_start_us) & (t < c.gesture_end_us)]


def centroid_rotation(events: np.ndarray, window_us: int = 25_000) -> float:
    """Total signed angle (radians) swept by the event centroid around its mean position.

    Image coordinates, y down: a positive angle is clockwise on the displayed image.
    """
    k = (events["t"] - events["t"][0]) // window_us
    n = np.bincount(k)
    busy = n > 50
    cx = (np.bincount(k, events["x"]) / np.maximum(n, 1))[busy]
    cy = (np.bincount(k, events["y"]) / np.maximum(n, 1))[busy]
    angle = np.unwrap(np.arctan2(cy - cy.mean(), cx - cx.mean()))
    return float(angle[-1] - angle[0])


@pytest.mark.parametrize("user", [1, 2])
@pytest.mark.parametrize("label, clockwise", [(RIGHT_CW, True), (RIGHT_CCW, False), (LEFT_CW, True),
                                              (LEFT_CCW, False)])
def test_arm_circles_turn_the_way_their_class_says(label, clockwise, user):
    # 1.5 s at 0.5-0.8 turns a second: more than half a turn, the right way round.
    swept = centroid_rotation(gesture_events(clip(label, user)))
    assert (swept > np.pi) if clockwise else (swept < -np.pi), swept


@pytest.mark.parametrize("user", [1, 2])
def test_right_arm_is_on_the_sensor_left(user):
    """The camera faces the subject: the subject's right arm moves on the sensor's left side."""
    midline = subject(SEED, user).body.neck_x
    for label, on_left in ((RIGHT_WAVE, True), (LEFT_WAVE, False), (RIGHT_CW, True), (LEFT_CCW, False)):
        x = gesture_events(clip(label, user))["x"]
        left_share = np.mean(x < midline)
        assert left_share > 0.75 if on_left else left_share < 0.25, (label, left_share)


def test_clapping_is_symmetric_and_periodic():
    c = clip(CLAP, 2)
    events = gesture_events(c)
    midline = subject(SEED, 2).body.neck_x
    assert 0.35 < np.mean(events["x"] < midline) < 0.65
    # Hands meet about twice a second, moving fastest twice per clap (in and out): the
    # event rate peaks at 3-7 Hz.
    counts = np.bincount((events["t"] - c.gesture_start_us) // 10_000)
    spectrum = np.abs(np.fft.rfft(counts - counts.mean()))
    freq = np.fft.rfftfreq(len(counts), 0.01)
    assert 3.0 <= freq[np.argmax(spectrum[1:]) + 1] <= 7.0


def test_air_guitar_strums_on_the_right_and_frets_far_out_on_the_left():
    events = gesture_events(clip(AIR_GUITAR, 2))
    midline = subject(SEED, 2).body.neck_x
    assert not subject(SEED, 2).style.left_handed
    right = events[events["x"] < midline - 4]
    left = events[events["x"] > midline + 4]
    assert len(right) > 2 * len(left)  # the strumming hand moves most
    # The fretting hand holds the guitar's neck, further from the body than the strumming hand.
    assert np.median(left["x"] - midline) > np.median(midline - right["x"].astype(float))


def test_events_are_valid_and_inside_the_sensor_even_when_arms_leave_the_view():
    for label in range(NUM_CLASSES):
        events = clip(label, 4, settings=SHORT).events
        validate_events(events, DVS128_SIZE)  # sorted, polarity 0/1, inside 128 x 128
        assert events["x"].max() < 128 and events["y"].max() < 128
        assert set(np.unique(events["p"])) == {0, 1}


def test_event_rates_are_those_of_dvs_gesture():
    """Real DVS Gesture: about 5 GB of 8-byte events over 122 three-minute recordings, ~30k events/s."""
    rates = []
    for label in range(NUM_CLASSES):
        c = clip(label, 4, settings=SHORT)
        rates.append(len(gesture_events(c)) / ((c.gesture_end_us - c.gesture_start_us) / 1e6))
    assert 10_000 < min(rates) and max(rates) < 200_000, rates
    assert 20_000 < np.median(rates) < 100_000, rates


def test_labels_line_up_with_the_motion():
    events, segments = make_session([RIGHT_WAVE, CLAP, LEFT_CW], SEED, 5, "natural", settings=FAST)
    t = events["t"]

    def rate(a: int, b: int) -> float:
        return np.count_nonzero((t >= a) & (t < b)) / ((b - a) / 1e6)

    for segment in segments:
        during = rate(segment.start_us, segment.end_us)
        # The gesture is going on from the first to the last labelled moment.
        assert rate(segment.start_us, segment.start_us + 250_000) > 0.4 * during
        assert rate(segment.end_us - 250_000, segment.end_us) > 0.4 * during
    for before, after in zip(segments[:-1], segments[1:]):
        middle = (before.end_us + after.start_us) // 2  # the subject stands still between gestures
        pause = rate(middle - 150_000, middle + 150_000)
        assert pause < 0.25 * min(rate(s.start_us, s.end_us) for s in (before, after))
    assert [s.label for s in segments] == [RIGHT_WAVE, CLAP, LEFT_CW]
    assert all(b.start_us > a.end_us for a, b in zip(segments[:-1], segments[1:]))


def on_rate_spectrum(c: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectrum of the ON-event rate during the gesture (0.5 ms bins).

    ON events only: a flickering pixel fires ON on the rise and OFF on the fall, so ON
    and OFF together repeat at twice the flicker frequency.
    """
    a, b = c.gesture_start_us, c.gesture_end_us
    t = c.events["t"][(c.events["t"] >= a) & (c.events["t"] < b) & (c.events["p"] == 1)]
    counts = np.bincount((t - a) // 500, minlength=(b - a) // 500)
    return np.fft.rfftfreq(len(counts), 500e-6), np.abs(np.fft.rfft(counts - counts.mean()))


@pytest.mark.parametrize("lighting, mains_hz, flicker_hz", [("fluorescent", 60, 120), ("fluorescent", 50, 100),
                                                            ("fluorescent_led", 60, 120), ("natural", 60, None)])
def test_fluorescent_light_flickers_at_twice_the_mains_frequency(lighting, mains_hz, flicker_hz):
    settings = SynthSettings(timing=TimingModel(gesture_seconds=(1.5, 1.5)), max_step_px=1.5, mains_hz=mains_hz)
    freq, spectrum = on_rate_spectrum(clip(RIGHT_WAVE, 2, lighting, settings))
    band = (freq > 40) & (freq < 400)
    strongest = freq[band][np.argmax(spectrum[band])]
    relative = spectrum[band].max() / np.median(spectrum[band])
    if flicker_hz:
        assert abs(strongest - flicker_hz) < 1.5 and relative > 20
    else:
        assert relative < 10


def test_hot_pixels_fire_steadily_whatever_the_scene():
    sensor = camera(SEED)
    c = clip(CLAP, 1)
    width = DVS128_SIZE[0]
    flat = c.events["y"].astype(np.int64) * width + c.events["x"]
    seconds = c.duration_us / 1e6
    for pixel, rate in zip(sensor.hot_index, sensor.hot_rate):
        assert abs(np.count_nonzero(flat == pixel) / seconds - rate) < 0.35 * rate + 5
    # In the still part, before the gesture, the hot pixels are the busiest pixels.
    still = flat[c.events["t"] < c.gesture_start_us - 600_000]
    busiest = np.argsort(np.bincount(still, minlength=width * 128))[-len(sensor.hot_index):]
    assert set(busiest) == set(sensor.hot_index.tolist())


def test_background_activity_is_sparse_and_mostly_on():
    c = clip(CLAP, 1)
    sensor = camera(SEED)
    still = c.events[c.events["t"] < c.gesture_start_us - 600_000]
    noise = still[~np.isin(still["y"].astype(np.int64) * 128 + still["x"], sensor.hot_index)]
    # Away from the subject (the top corners) there is only background activity.
    corner = noise[(noise["y"] < 20) & ((noise["x"] < 20) | (noise["x"] > 107))]
    assert 0 < len(corner) and np.mean(corner["p"]) > 0.55


def test_same_seed_same_events_other_seed_other_events():
    job = ClipJob(SEED, 3, "lab", CLAP, 0, FAST)
    again = generate_clip(job)
    assert np.array_equal(again.events, clip(CLAP, 3, "lab").events)
    other = generate_clip(ClipJob(SEED + 1, 3, "lab", CLAP, 0, FAST))
    assert not np.array_equal(other.events[:1000], again.events[:1000])


def test_bad_arguments_are_clear_value_errors():
    with pytest.raises(ValueError, match="unknown gesture class"):
        parse_class("jumping jacks")
    with pytest.raises(ValueError, match="outside 1..11"):
        parse_class("12")
    with pytest.raises(ValueError, match="unknown gesture class"):
        generate_clip(ClipJob(SEED, 1, "natural", NUM_CLASSES, 0, FAST))
    with pytest.raises(ValueError, match="unknown lighting 'candle'"):
        generate_clip(ClipJob(SEED, 1, "candle", CLAP, 0, FAST))
    with pytest.raises(ValueError, match="gesture_seconds"):
        SynthSettings(timing=TimingModel(gesture_seconds=(2.0, 1.0)))
    with pytest.raises(ValueError, match="unknown gesture class"):
        make_session([CLAP, -1], SEED)
    with pytest.raises(ValueError, match="at least one gesture"):
        make_session([], SEED)


def test_class_names_and_numbers_parse_like_the_label_files():
    assert parse_class("right-hand-wave") == RIGHT_WAVE == parse_class("Right hand wave") == parse_class("2")
    assert parse_class("left_arm_counter-clockwise") == LEFT_CCW
    assert parse_class("other") == NUM_CLASSES - 1


def test_short_timing_draws_exactly_what_it_always_did():
    """Data sets made with the original timing keep their bytes: same draws, same order."""
    drawn = sample_timing(np.random.default_rng(5), TimingModel())
    rng = np.random.default_rng(5)
    assert drawn == ClipTiming(rng.uniform(0.5, 1.2), rng.uniform(0.35, 0.6), rng.uniform(3.5, 5.0),
                               rng.uniform(0.35, 0.6))


def test_dvsgesture_timing_has_the_real_datasets_durations_and_pauses():
    rng = np.random.default_rng(0)
    clips = [sample_timing(rng, DVSGESTURE_TIMING) for _ in range(4000)]
    gestures = np.array([c.gesture for c in clips])
    pauses = np.array([a.lead_out + b.still + b.lead_in for a, b in zip(clips[:-1], clips[1:])])
    assert gestures.min() >= 6.0 and gestures.max() <= 10.0
    assert 0.4 <= pauses.min() and pauses.max() <= 6.2  # leads 0.2-0.6 s each, standing 0-5 s
    back_to_back = np.mean([c.still <= 0.1 and c.lead_in <= 0.3 for c in clips])
    assert 0.12 <= back_to_back <= 0.18
    if SHARED_LABELS.exists():  # the real label file's gestures and pauses fall inside the model's ranges
        real = read_labels(SHARED_LABELS)
        real_pauses = [(b.start_us - a.end_us) / 1e6 for a, b in zip(real[:-1], real[1:])]
        assert 0.3 <= min(real_pauses) and max(real_pauses) <= pauses.max()
        assert all(5.5 <= (s.end_us - s.start_us) / 1e6 <= 11.0 for s in real)


def test_idle_actions_move_the_standing_person_but_less_than_a_gesture():
    """A person standing between gestures fidgets (events while standing), far less than a gesture."""
    timing = TimingModel(gesture_seconds=(2.0, 2.0), still_seconds=(3.0, 3.0))
    rates = {}
    for idle in (False, True):
        settings = SynthSettings(timing=replace(timing, idle_actions=idle), max_step_px=1.5)
        standing, gesturing = [], []
        for repetition in range(3):
            clip = generate_clip(ClipJob(SEED, 5, "natural", RIGHT_WAVE, repetition, settings))
            t = clip.events["t"]
            standing.append(np.count_nonzero(t < 3_000_000) / 3.0)
            gesturing.append(np.count_nonzero((t >= clip.gesture_start_us) & (t < clip.gesture_end_us)) / 2.0)
        rates[idle] = (np.mean(standing), np.mean(gesturing))
    assert rates[True][0] > 1.05 * rates[False][0]
    assert rates[True][0] < 0.3 * rates[True][1]
    hands, torso, head = idle_motion(np.linspace(0, 30, 3001), 30.0, subject(SEED, 5).body,
                                     subject(SEED, 5).style, np.random.default_rng(1))
    assert np.abs(hands).max() > 1.0 and np.abs(torso[:, 0]).max() > 0.2 and np.abs(head).max() > 0.2
    assert np.abs(hands).max() < 30 and np.abs(torso).max() < 10  # small motions, not gestures
