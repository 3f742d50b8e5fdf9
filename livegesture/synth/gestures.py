"""Motion programs of the 11 DVS Gesture classes, and the timeline of one clip.

A program gives the target wrist position of both arms over time (body coordinates, see
:mod:`livegesture.synth.body`) and the direction each elbow points to; inverse
kinematics then places the elbows. Conventions:

* "right"/"left" are the **subject's** arms: the right arm is on the sensor's left side;
* "clockwise" is as seen on the sensor image displayed upright (the viewer's view of the
  subject): the hand's angle ``atan2(y, x)`` in image coordinates (y down) increases.

Each program draws its own jitter (frequency, amplitude, centre, start phase) from the
clip's generator on top of the subject's :class:`MotionStyle` (tempo, rhythm, amplitude,
handedness), so that no two repetitions are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livegesture.sources.labels import CLASS_NAMES, NUM_CLASSES
from livegesture.synth.body import LEFT, RIGHT, SIDE, BodyShape, PoseTrack, project, solve_arms

CLASS_SLUGS: tuple[str, ...] = tuple(name.replace(" ", "-") for name in CLASS_NAMES)
"""Class names for command lines: ``hand-clapping``, ``right-arm-clockwise``, ..."""

(CLAP, RIGHT_WAVE, LEFT_WAVE, RIGHT_CW, RIGHT_CCW, LEFT_CW, LEFT_CCW,
 ARM_ROLL, AIR_DRUMS, AIR_GUITAR, OTHER) = range(NUM_CLASSES)
CIRCLES: dict[int, tuple[int, int]] = {RIGHT_CW: (RIGHT, 1), RIGHT_CCW: (RIGHT, -1),
                                       LEFT_CW: (LEFT, 1), LEFT_CCW: (LEFT, -1)}
"""Arm circle classes: (arm, +1 clockwise / -1 counter-clockwise on the image)."""
WAVES: dict[int, int] = {RIGHT_WAVE: RIGHT, LEFT_WAVE: LEFT}

TWO_PI = 2.0 * np.pi
CIRCLE_HZ = 0.6
"""Turns per second of an arm circle (big, slow circles): two to three turns per gesture, so that
the ten equal-count frames of a sample each show less than half a turn and the way it turns."""
FOLD_LIMIT = 0.4
"""Closest a wrist comes to its shoulder, as a fraction of the arm's reach."""


def parse_class(text: str | int) -> int:
    """A 0-based class from a name (``right-hand-wave``, ``"right hand wave"``) or a 1-based number."""
    key = str(text).strip().lower().replace("_", "-").replace(" ", "-")
    if key.isdigit():
        number = int(key)
        if 1 <= number <= NUM_CLASSES:
            return number - 1
        raise ValueError(f"class number {number} is outside 1..{NUM_CLASSES}")
    if key == "other":
        return OTHER
    if key in CLASS_SLUGS:
        return CLASS_SLUGS.index(key)
    raise ValueError(f"unknown gesture class {text!r}: expected 1..{NUM_CLASSES} or one of {', '.join(CLASS_SLUGS)}")


@dataclass(frozen=True)
class MotionStyle:
    """How one subject moves."""

    tempo: float
    """Multiplies every gesture's frequency."""
    rhythm: float
    """Relative tempo wobble within a gesture."""
    amplitude: float
    dominance: float
    """Right arm amplitude x (1 + dominance), left x (1 - dominance)."""
    left_handed: bool
    """Mirrors the air guitar and leads air drums with the left hand."""
    roll_direction: int
    """Arm roll: +1 or -1."""
    idle: float
    """Amplitude of sway and idle arm motion, pixels."""

    def arm_amplitude(self, arm: int) -> float:
        return self.amplitude * (1.0 - SIDE[arm] * self.dominance)


def sample_style(rng: np.random.Generator) -> MotionStyle:
    return MotionStyle(
        tempo=rng.uniform(0.8, 1.25),
        rhythm=rng.uniform(0.02, 0.1),
        amplitude=rng.uniform(0.85, 1.15),
        dominance=rng.uniform(-0.06, 0.12),
        left_handed=bool(rng.random() < 0.12),
        roll_direction=int(rng.choice([-1, 1])),
        idle=rng.uniform(0.2, 0.6),
    )


@dataclass(frozen=True)
class ClipTiming:
    """One clip: standing still, raising the arms, the labelled gesture, lowering them (seconds)."""

    still: float
    lead_in: float
    gesture: float
    lead_out: float

    @property
    def gesture_start(self) -> float:
        return self.still + self.lead_in

    @property
    def gesture_end(self) -> float:
        return self.gesture_start + self.gesture

    @property
    def total(self) -> float:
        return self.gesture_end + self.lead_out


STILL_SECONDS = (0.5, 1.2)
"""Standing before the arms rise, in the short timing (pauses of about 1.2-2.4 s between gestures)."""
LEAD_SECONDS = (0.35, 0.6)
"""Raising the arms before a gesture, lowering them after it."""
BACK_TO_BACK_STILL = (0.0, 0.1)
BACK_TO_BACK_LEAD = (0.2, 0.3)
"""A gesture right after the last one: hardly any standing, quick raise and lower (pause 0.4-0.7 s)."""


@dataclass(frozen=True)
class TimingModel:
    """How long each part of a clip lasts (seconds), drawn per clip.

    The default is the project's original short timing. :data:`DVSGESTURE_TIMING` follows the
    real dataset's labels (``user01_natural``: gestures 6.4-10.6 s, pauses 0.3-5.4 s, some
    gestures right after the previous one) and each clip's tempo varies around the subject's.
    """

    gesture_seconds: tuple[float, float] = (3.5, 5.0)
    still_seconds: tuple[float, float] = STILL_SECONDS
    back_to_back: float = 0.0
    """Probability that a clip follows the previous one with almost no pause."""
    speed_spread: float = 0.0
    """Each clip's tempo is the subject's times a factor log-uniform in ``[1/(1+s), 1+s]``."""
    idle_actions: bool = False
    """While standing: breathing, posture shifts, small hand and head motions (see :func:`idle_motion`)."""

    def __post_init__(self) -> None:
        low, high = self.gesture_seconds
        if not 0 < low <= high:
            raise ValueError(f"gesture_seconds must satisfy 0 < low <= high, got {self.gesture_seconds}")
        low, high = self.still_seconds
        if not 0 <= low <= high:
            raise ValueError(f"still_seconds must satisfy 0 <= low <= high, got {self.still_seconds}")
        if not 0 <= self.back_to_back <= 1:
            raise ValueError(f"back_to_back must be a probability, got {self.back_to_back}")
        if self.speed_spread < 0:
            raise ValueError(f"speed_spread must be >= 0, got {self.speed_spread}")


DVSGESTURE_TIMING = TimingModel(gesture_seconds=(6.0, 10.0), still_seconds=(0.1, 5.0), back_to_back=0.15,
                                speed_spread=0.25, idle_actions=True)
"""The real dataset's timing: with the leads, pauses of 1-6 s, 15 % of gestures back to back."""
TIMINGS: dict[str, TimingModel] = {"dvsgesture": DVSGESTURE_TIMING, "short": TimingModel()}
"""The timings ``livegesture synth --timing`` offers."""


def sample_timing(rng: np.random.Generator, model: TimingModel) -> ClipTiming:
    """One clip's timing. Without back-to-back clips it draws exactly what the original did."""
    still, lead = model.still_seconds, LEAD_SECONDS
    if model.back_to_back and rng.random() < model.back_to_back:
        still, lead = BACK_TO_BACK_STILL, BACK_TO_BACK_LEAD
    return ClipTiming(still=rng.uniform(*still), lead_in=rng.uniform(*lead),
                      gesture=rng.uniform(*model.gesture_seconds), lead_out=rng.uniform(*lead))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _wander(t: np.ndarray, rng: np.random.Generator, amplitude: float, fmin: float, fmax: float,
            terms: int = 3) -> np.ndarray:
    """Smooth random motion: a sum of sinusoids of random frequency and phase."""
    freq = rng.uniform(fmin, fmax, terms)
    phase = rng.uniform(0, TWO_PI, terms)
    return amplitude * np.sqrt(2.0 / terms) * np.sin(TWO_PI * freq * t[:, None] + phase).sum(axis=1)


def _phase(t: np.ndarray, freq: float, rhythm: float, rng: np.random.Generator) -> np.ndarray:
    """Cycles done by time ``t`` at ``freq`` Hz whose tempo wobbles by ``rhythm`` (relative)."""
    wobble_freq = rng.uniform(0.15, 0.6, 3)
    wobble_phase = rng.uniform(0, TWO_PI, 3)
    amp = rhythm * np.sqrt(2.0 / 3.0)
    angle = TWO_PI * wobble_freq * t[:, None] + wobble_phase
    integral = (np.cos(wobble_phase) - np.cos(angle)) / (TWO_PI * wobble_freq)
    return freq * (t + amp * integral.sum(axis=1))


def rest_hands(body: BodyShape) -> tuple[np.ndarray, np.ndarray]:
    """Wrist targets ``(2, 3)`` and elbow poles ``(2, 3)`` of arms hanging at the sides."""
    shoulders = body.shoulders()
    hands = shoulders + np.stack([[SIDE[a] * 3.0, body.reach - 2.5, 2.5] for a in (RIGHT, LEFT)])
    poles = np.stack([[SIDE[a] * 0.3, 0.0, -1.0] for a in (RIGHT, LEFT)])
    return hands, poles


Program = Callable[[np.ndarray, BodyShape, MotionStyle, np.random.Generator], tuple[np.ndarray, np.ndarray]]
"""``(t, body, style, rng) -> (hands (n, 2, 3), poles (n, 2, 3))`` over the gesture's own time."""


def _start(t: np.ndarray, body: BodyShape) -> tuple[np.ndarray, np.ndarray]:
    """Both arms at rest, to be overwritten by a program's moving arms."""
    hands, poles = rest_hands(body)
    n = len(t)
    return np.repeat(hands[None], n, axis=0), np.repeat(poles[None], n, axis=0)


def _clap(t, body, style, rng):
    hands, poles = _start(t, body)
    u = body.size
    phi = _phase(t, 2.3 * style.tempo * rng.normal(1, 0.06), style.rhythm, rng) + 0.5
    opening = (0.5 - 0.5 * np.cos(TWO_PI * phi)) ** 0.8
    centre = u * np.array([rng.normal(0, 1.5), rng.normal(23, 2.5), rng.normal(24, 2.5)])
    half = u * 11.5 * style.amplitude * rng.normal(1, 0.07)
    for arm in (RIGHT, LEFT):
        hands[:, arm, 0] = centre[0] + SIDE[arm] * (0.75 * body.hand + half * opening)
        hands[:, arm, 1] = centre[1] + u * 1.5 * np.sin(TWO_PI * phi)
        hands[:, arm, 2] = centre[2] - u * 3.0 * opening
        poles[:, arm] = (SIDE[arm], 0.6, -0.4)
    return hands, poles


def _wave(arm: int) -> Program:
    def program(t, body, style, rng):
        hands, poles = _start(t, body)
        side, u = SIDE[arm], body.size
        shoulder = body.shoulders()[arm]
        phi = _phase(t, 2.5 * style.tempo * rng.normal(1, 0.06), style.rhythm, rng) + rng.random()
        swing = 0.42 * style.arm_amplitude(arm) * rng.normal(1, 0.07)
        elbow = shoulder + u * np.array([side * rng.normal(11, 2), rng.normal(13, 2), 7.0])
        angle = side * rng.normal(0.15, 0.08) + swing * np.sin(TWO_PI * phi)
        hands[:, arm] = elbow + body.forearm * np.stack([np.sin(angle), -0.97 * np.cos(angle),
                                                         np.full_like(angle, 0.25)], axis=1)
        poles[:, arm] = (elbow - shoulder) / np.linalg.norm(elbow - shoulder) + np.array([0.0, 0.0, -0.3])
        return hands, poles
    return program


def _circle(arm: int, direction: int) -> Program:
    def program(t, body, style, rng):
        hands, poles = _start(t, body)
        side = SIDE[arm]
        phi = _phase(t, CIRCLE_HZ * style.tempo * rng.normal(1, 0.06), style.rhythm, rng)
        # A cone: the hand circles in front of the shoulder, the arm nearly straight.
        radius = 0.6 * body.reach * style.arm_amplitude(arm) * rng.normal(1, 0.06)
        centre = body.shoulders()[arm] + np.array([side * 0.2 * radius, radius * rng.normal(0.05, 0.06),
                                                   0.45 * body.reach])
        angle = rng.uniform(0, TWO_PI) + direction * TWO_PI * phi
        radial = np.stack([np.cos(angle), np.sin(angle), 0.15 * np.sin(angle)], axis=1)
        hands[:, arm] = centre + radius * radial
        poles[:, arm] = radial  # the elbow bows away from the circle's centre: never along the arm
        return hands, poles
    return program


def _roll(t, body, style, rng):
    hands, poles = _start(t, body)
    u = body.size
    phi = _phase(t, 1.7 * style.tempo * rng.normal(1, 0.06), style.rhythm, rng)
    radius = u * 6.5 * style.amplitude * rng.normal(1, 0.07)
    centre = u * np.array([rng.normal(0, 1.5), rng.normal(27, 2.5), rng.normal(20, 2)])
    for arm, offset in ((RIGHT, 0.0), (LEFT, 0.5)):
        angle = style.roll_direction * TWO_PI * (phi + offset)
        hands[:, arm] = centre + np.stack([SIDE[arm] * 0.6 * body.hand + u * 2.5 * np.cos(angle),
                                           radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        poles[:, arm] = (SIDE[arm], 0.3, -0.2)
    return hands, poles


def _drums(t, body, style, rng):
    hands, poles = _start(t, body)
    u = body.size
    lead = LEFT if style.left_handed else RIGHT
    freq = 2.2 * style.tempo * rng.normal(1, 0.06)
    base_y, base_z = u * rng.normal(33, 2.5), u * rng.normal(22, 2)
    for arm in (RIGHT, LEFT):
        side = SIDE[arm]
        phi = _phase(t, freq, style.rhythm, rng) + (0.0 if arm == lead else 0.5)
        cycle = np.floor(phi).astype(np.int64)
        frac = phi - cycle
        # A drum per stroke: mostly the main one, sometimes a neighbour.
        drums = side * u * np.array([rng.normal(17, 2), rng.normal(25, 2), rng.normal(9, 2)])
        n_cycles = int(cycle.max() - cycle.min()) + 2
        choice = np.where(rng.random(n_cycles) < 0.7, 0, rng.integers(1, 3, n_cycles))
        x_of = drums[choice]
        k = cycle - cycle.min()
        x = x_of[k] + (x_of[k + 1] - x_of[k]) * _smoothstep((frac - 0.3) / 0.5)
        lift = np.sin(np.pi * frac ** 0.7) ** 2  # a quick down-stroke, a slower lift
        height = u * 10.0 * style.arm_amplitude(arm) * rng.normal(1, 0.07)
        hands[:, arm] = np.stack([x, base_y - height * lift, base_z - 0.3 * height * lift], axis=1)
        poles[:, arm] = (side * 0.9, 0.9, -0.5)
    return hands, poles


def _steps(t: np.ndarray, rng: np.random.Generator, spread: float, hold: tuple[float, float],
           ramp: float) -> np.ndarray:
    """Random levels held for random times, with smooth ``ramp``-second transitions."""
    times = np.cumsum(rng.uniform(*hold, int(t[-1] / hold[0]) + 2))
    levels = rng.uniform(-spread, spread, len(times) + 1)
    out = np.full_like(t, levels[0])
    for time, before, after in zip(times, levels[:-1], levels[1:]):
        out += (after - before) * _smoothstep((t - time) / ramp)
    return out


def _guitar(t, body, style, rng):
    hands, poles = _start(t, body)
    u = body.size
    strum, fret = (LEFT, RIGHT) if style.left_handed else (RIGHT, LEFT)
    phi = _phase(t, 3.3 * style.tempo * rng.normal(1, 0.06), style.rhythm, rng)
    height = u * 6.5 * style.arm_amplitude(strum) * rng.normal(1, 0.08)
    side = SIDE[strum]
    hands[:, strum] = np.stack([u * (side * rng.normal(3, 1.5) + 1.5 * np.sin(TWO_PI * phi + 0.3)),
                                u * rng.normal(40, 2) + height * np.sin(TWO_PI * phi),
                                np.full_like(t, u * 16.0)], axis=1)
    poles[:, strum] = (side * 0.8, 0.8, -0.4)
    side = SIDE[fret]
    neck = np.array([side * 0.9, -0.42, 0.0])
    base = u * np.array([side * rng.normal(30, 2), rng.normal(23, 2), 13.0])
    slide = u * (_steps(t, rng, 8.0, (0.4, 0.9), 0.12) + 3.0 * np.sin(TWO_PI * 0.4 * t + rng.uniform(0, TWO_PI)))
    fingers = u * 1.2 * np.sin(TWO_PI * rng.uniform(4, 7) * t)
    hands[:, fret] = base + slide[:, None] * neck + fingers[:, None] * np.array([0.0, 1.0, 0.0])
    poles[:, fret] = (side * 0.2, 1.0, -0.3)
    return hands, poles


def _other_targets(body: BodyShape, arm: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Places a hand goes to in everyday, non-gesture motion, each with a natural elbow direction."""
    side, u = SIDE[arm], body.size
    rest, rest_poles = rest_hands(body)
    head_y = -(body.neck_length + body.head_ry)
    direction = rng.normal(size=3) * np.array([1.0, 1.0, 0.3]) + np.array([side * 0.8, 0.2, 0.6])
    direction[2] = abs(direction[2])  # reaches go forward
    direction /= np.linalg.norm(direction)
    reach = body.shoulders()[arm] + direction * body.reach * rng.uniform(0.8, 0.97)
    down = np.array([0.0, 1.0, 0.0])
    reach_pole = down - direction[1] * direction + np.array([side * 0.1, 0.0, 0.0])
    return {
        "rest": (rest[arm], rest_poles[arm]),
        "hip": (np.array([side * (body.torso_half_width + 3 * u), 38.0 * u, -2.0 * u]), np.array([side, 0.0, -0.5])),
        "head": (np.array([side * (body.head_rx + 2 * u), head_y, 4.0 * u]), np.array([side, -0.3, 0.0])),
        "chin": (np.array([side * 3.0 * u, head_y * 0.4, 10.0 * u]), np.array([side * 0.5, 1.0, 0.0])),
        "chest": (u * np.array([side * 3.0, 18.0, 14.0]), np.array([side * 0.7, 1.0, -0.2])),
        "reach": (reach, reach_pole),
        "overhead": (u * np.array([side * 8.0, -38.0, 2.0]), np.array([side, 0.0, 0.0])),
        "cross": (u * np.array([-side * 16.0, 24.0, 10.0]), np.array([side * 0.3, 1.0, 0.0])),
        "pocket": (np.array([side * (body.torso_half_width - 2 * u), 50.0 * u, 3.0 * u]),
                   np.array([side * 0.5, 0.0, -1.0])),
    }


_OTHER_ACTIVE = ("head", "chin", "chest", "reach", "overhead", "cross", "hip", "pocket")


def _other(t, body, style, rng):
    """Everyday motions: a random sequence of reaches, touches and holds, not periodic."""
    hands, poles = _start(t, body)
    keys = [0.0]
    while keys[-1] < t[-1]:
        keys.append(keys[-1] + rng.uniform(0.9, 1.8))
    current = [(hands[0, arm].copy(), poles[0, arm].copy()) for arm in (RIGHT, LEFT)]
    both_up = rng.random() < 0.25
    for i, key in enumerate(keys[:-1]):
        active = int(rng.integers(2))
        stretch = both_up and i == 1
        name = "overhead" if stretch else str(rng.choice(_OTHER_ACTIVE))
        for arm in (RIGHT, LEFT):
            places = _other_targets(body, arm, rng)
            if arm == active or stretch:
                target, pole = places[name]
            elif rng.random() < 0.6:
                continue
            else:
                target, pole = places[str(rng.choice(("rest", "hip", "pocket")))]
            ramp = rng.uniform(0.45, 0.85) / style.tempo
            w = _smoothstep((t - key) / ramp)[:, None]
            hands[:, arm] += w * (target - current[arm][0])
            poles[:, arm] += w * (pole - current[arm][1])
            current[arm] = (target, pole)
    for arm in (RIGHT, LEFT):
        scratch = rng.random() < 0.3
        amplitude = body.size * (2.0 if scratch else 0.8)
        band = (3.0, 5.0) if scratch else (0.3, 1.0)
        hands[:, arm] += np.stack([_wander(t, rng, amplitude, *band) for _ in range(3)], axis=1)
    return hands, poles


PROGRAMS: dict[int, Program] = {
    CLAP: _clap,
    **{label: _wave(arm) for label, arm in WAVES.items()},
    **{label: _circle(arm, direction) for label, (arm, direction) in CIRCLES.items()},
    ARM_ROLL: _roll,
    AIR_DRUMS: _drums,
    AIR_GUITAR: _guitar,
    OTHER: _other,
}


FIDGET_RATE_HZ = 0.6
"""Mean rate of idle actions (a hand moved, a posture shift, a head turn) while standing."""


def idle_motion(times: np.ndarray, until: float, body: BodyShape, style: MotionStyle,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a person who is present but not gesturing does: ``(hands (n, 2, 3), torso (n, 2),
    head (n, 2))`` offsets at ``times``, body coordinates / pixels.

    Breathing all along (the torso rises and falls by a fraction of a pixel every 3-5 s);
    before ``until`` (seconds) a Poisson train of idle actions: a hand moved 3-10 px and
    back (adjusting clothes, scratching), a posture shift (the torso steps 1-4 px and stays),
    a head turn and back. The arms' offsets fade out where the gesture takes them (the caller
    weights them).
    """
    n, u = len(times), body.size
    hands, torso, head = np.zeros((n, 2, 3)), np.zeros((n, 2)), np.zeros((n, 2))
    torso[:, 1] = u * rng.uniform(0.25, 0.5) * np.sin(TWO_PI * rng.uniform(0.2, 0.33) * times
                                                      + rng.uniform(0, TWO_PI))
    start = rng.exponential(1 / FIDGET_RATE_HZ)
    while start < until:
        kind = int(rng.integers(3))
        ramp, hold = rng.uniform(0.25, 0.7) / style.tempo, rng.uniform(0.3, 2.0)
        rise = _smoothstep((times - start) / ramp)
        there_and_back = rise - _smoothstep((times - start - ramp - hold) / ramp)
        if kind == 0:
            hands[:, int(rng.integers(2))] += there_and_back[:, None] * u * rng.normal(0, 5.0, 3) * (1.0, 1.0, 0.5)
        elif kind == 1:
            torso += rise[:, None] * u * rng.normal(0, (2.0, 0.7))
        else:
            head += there_and_back[:, None] * u * rng.normal(0, (2.0, 1.0))
        start += 2 * ramp + hold + rng.exponential(1 / FIDGET_RATE_HZ)
    return hands, torso, head


def clip_track(label: int, timing: ClipTiming, times: np.ndarray, body: BodyShape, style: MotionStyle,
               rng: np.random.Generator, *, idle_actions: bool = False) -> PoseTrack:
    """The pose at each of ``times`` (seconds from the clip start): still, raise, gesture, lower.
    ``idle_actions`` adds :func:`idle_motion` (standing is then not frozen)."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"unknown gesture class {label}: expected 0..{NUM_CLASSES - 1}")
    n = len(times)
    fidget_hands, fidget_torso, fidget_head = (idle_motion(times, timing.still, body, style, rng) if idle_actions
                                               else (np.zeros((n, 2, 3)), np.zeros((n, 2)), np.zeros((n, 2))))
    rest, rest_poles = rest_hands(body)
    idle = np.stack([np.stack([_wander(times, rng, style.idle, 0.1, 0.5) for _ in range(3)], axis=1)
                     for _ in (RIGHT, LEFT)], axis=1)
    idle[..., 2] *= 0.5
    gesture_t = np.clip(times - timing.gesture_start, 0.0, timing.gesture)
    hands_g, poles_g = PROGRAMS[label](gesture_t, body, style, rng)
    weight = (_smoothstep((times - timing.still) / timing.lead_in)
              - _smoothstep((times - timing.gesture_end) / timing.lead_out))[:, None, None]
    hands = rest + idle + (1.0 - weight) * fidget_hands + weight * (hands_g - rest)
    poles = rest_poles + weight * (poles_g - rest_poles)
    shoulders = body.shoulders()
    # A hand passing close to its shoulder goes round it in front: a folded arm has no stable elbow.
    offset = hands - shoulders
    limit = FOLD_LIMIT * body.reach
    near = 1.0 - (offset[..., 0] ** 2 + offset[..., 1] ** 2) / limit**2
    hands[..., 2] = shoulders[:, 2] + np.maximum(offset[..., 2], limit * near)
    elbows, wrists = solve_arms(shoulders, hands, poles, body.upper_arm, body.forearm)
    forearm_dir = (wrists - elbows) / body.forearm
    tips = wrists + body.hand * forearm_dir
    joints3 = np.stack([np.broadcast_to(shoulders, elbows.shape), elbows, wrists, tips], axis=2)
    sway = np.stack([_wander(times, rng, 0.6 * style.idle, 0.1, 0.4),
                     _wander(times, rng, 0.4 * style.idle, 0.15, 0.35)], axis=1)
    head = np.stack([_wander(times, rng, 0.6 * style.idle, 0.1, 0.6),
                     _wander(times, rng, 0.3 * style.idle, 0.1, 0.6)], axis=1)
    sway += fidget_torso
    head += fidget_head
    joints, scale = project(joints3, body, sway[:, None, None, :])
    return PoseTrack(joints=joints, radii=scale, depth=joints3[:, :, 1:3, 2].mean(axis=2),
                     body_offset=sway, head_offset=head)
