"""The prediction engine against the reference deployment ``run_sample``; clears, drains, staggering."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.backends import make_backend, run_sample
from livegesture.backends.testing import random_frames, random_network
from livegesture.integrate import Frame, integrate_sample
from livegesture.pipeline import engine as engine_module
from livegesture.pipeline.decision import RunningPrediction
from livegesture.pipeline.engine import PredictionEngine, decide_stream
from livegesture.pipeline.settings import PipelineSettings

SHAPE = (2, 63, 63)


@pytest.fixture(scope="module")
def network():
    return random_network(np.random.default_rng(5), channels=4, input_shape=SHAPE, num_classes=5, threshold=60,
                          weights=(-80, 80))


def as_frames(data: np.ndarray, first_t: int = 1000) -> list[Frame]:
    return [Frame(k, d, first_t + 10 * k, first_t + 10 * k + 9) for k, d in enumerate(data)]


def settings(**changes) -> PipelineSettings:
    """Raw counts visible in the decisions: no smoothing, no gating."""
    base = dict(backend="fast", smoothing=1, min_confidence=0.0, min_output_spikes=0, switch_margin=0.0)
    return PipelineSettings(**{**base, **changes})


def reference_counts(network, frames: np.ndarray, windows: list[tuple[int, int]], drain_steps: int) -> list:
    """Each window run as one reference sample on an independent backend (event-driven CPU)."""
    backend = make_backend("fast-sparse", network)
    counts = [run_sample(backend, frames[lo:hi], drain_steps).tolist() for lo, hi in windows]
    assert len({tuple(c) for c in counts}) > 1, "windows alike would not show which frames a decision saw"
    return counts


@pytest.mark.parametrize("clear_every, drain_steps", [(10, 6), (4, 2), (6, 0)])
def test_periodic_decision_k_is_run_sample_on_frames_k(network, clear_every, drain_steps):
    data = random_frames(np.random.default_rng(1), SHAPE, 5 * clear_every + 2, density=0.08)
    with PredictionEngine(network, settings(clear_every=clear_every, drain_steps=drain_steps)) as engine:
        decisions = [d for frame in as_frames(data) for d in engine.push(frame)]
    windows = [(k * clear_every, (k + 1) * clear_every) for k in range(5)]
    expected = reference_counts(network, data, windows, drain_steps)
    assert [d.counts.tolist() for d in decisions] == expected
    assert [d.frame_index for d in decisions] == [hi - 1 for _, hi in windows]
    assert [d.t_us for d in decisions] == [1000 + 10 * (hi - 1) + 9 for _, hi in windows]


@pytest.mark.parametrize("clear_every", [10, 5])
def test_staggered_decisions_come_twice_as_often_on_offset_windows(network, clear_every):
    data = random_frames(np.random.default_rng(2), SHAPE, 4 * clear_every + 1, density=0.08)
    with PredictionEngine(network, settings(mode="staggered", clear_every=clear_every, drain_steps=3)) as engine:
        assert engine.instances == 2
        decisions = [d for frame in as_frames(data) for d in engine.push(frame)]
    half = clear_every // 2
    starts = sorted([k * clear_every for k in range(4)] + [half + k * clear_every for k in range(3)])
    windows = [(lo, lo + clear_every) for lo in starts]
    assert [d.frame_index for d in decisions] == [hi - 1 for _, hi in windows]
    assert [d.counts.tolist() for d in decisions] == reference_counts(network, data, windows, 3)


class Recorder:
    """A real backend whose calls are logged: ('reset',), ('step', frame number or None)."""

    def __init__(self, backend, log: list, name: str) -> None:
        self.backend, self.log, self.name = backend, log, name

    @property
    def num_outputs(self) -> int:
        return self.backend.num_outputs

    def reset(self) -> None:
        self.log.append((self.name, "reset"))
        self.backend.reset()

    def step(self, inputs=None):
        self.log.append((self.name, "step", None if inputs is None else int(inputs[0, 0, 0])))
        return self.backend.step(inputs)

    def close(self) -> None:
        self.log.append((self.name, "close"))


@pytest.fixture
def call_log(monkeypatch):
    log: list = []
    names = iter("AB")

    def recording_backend(name, network, **options):
        return Recorder(make_backend(name, network, **options), log, next(names))

    monkeypatch.setattr(engine_module, "make_backend", recording_backend)
    return log


def numbered_frames(n: int) -> list[Frame]:
    """Frames whose pixel (0, 0, 0) holds their number, so the log shows which frame was stepped."""
    data = np.zeros((n, *SHAPE), dtype=np.uint8)
    data[:, 0, 0, 0] = np.arange(n)
    return as_frames(data)


def test_periodic_clears_after_every_window_and_drains_first(network, call_log):
    with PredictionEngine(network, settings(clear_every=3, drain_steps=2)) as engine:
        for frame in numbered_frames(7):
            engine.push(frame)
        stats = engine.step_stats
    window = lambda a, b, c: [("A", "step", a), ("A", "step", b), ("A", "step", c),  # noqa: E731
                              ("A", "step", None), ("A", "step", None), ("A", "reset")]
    assert call_log == [("A", "reset"), *window(0, 1, 2), *window(3, 4, 5), ("A", "step", 6), ("A", "close")]
    assert (stats.frames, stats.steps, stats.clears, stats.decisions) == (7, 7 + 2 * 2, 3, 2)


def test_staggered_second_instance_starts_half_a_window_later(network, call_log):
    with PredictionEngine(network, settings(mode="staggered", clear_every=4, drain_steps=1)) as engine:
        decided = [len(engine.push(frame)) for frame in numbered_frames(8)]
    assert decided == [0, 0, 0, 1, 0, 1, 0, 1]
    a = [entry[1:] for entry in call_log if entry[0] == "A"]
    b = [entry[1:] for entry in call_log if entry[0] == "B"]
    steps = lambda *frames: [("step", f) for f in frames]  # noqa: E731
    assert a == [("reset",), *steps(0, 1, 2, 3, None), ("reset",), *steps(4, 5, 6, 7, None), ("reset",), ("close",)]
    assert b == [("reset",), *steps(2, 3, 4, 5, None), ("reset",), *steps(6, 7), ("close",)]


def test_reconfigure_restarts_with_a_clear_and_adjusts_the_instances(network, call_log):
    engine = PredictionEngine(network, settings(mode="staggered", clear_every=4))
    frames = numbered_frames(3)
    engine.push(frames[0])
    engine.reconfigure(settings(clear_every=2, drain_steps=0))
    assert engine.instances == 1 and ("B", "close") in call_log
    del call_log[:]
    decisions = [d for frame in frames for d in engine.push(frame)]
    assert [d.frame_index for d in decisions] == [1]
    assert call_log == [("A", "step", 0), ("A", "step", 1), ("A", "reset"), ("A", "step", 2)]
    with pytest.raises(ValueError, match="make a new engine"):
        engine.reconfigure(settings(backend="simplesim"))
    engine.close()


def test_reset_clears_and_restarts_the_schedule(network, call_log):
    with PredictionEngine(network, settings(clear_every=2, drain_steps=0)) as engine:
        frames = numbered_frames(3)
        engine.push(frames[0])
        engine.reset()
        assert [len(engine.push(f)) for f in frames] == [0, 1, 0]


def test_decisions_go_through_the_running_prediction(network):
    data = random_frames(np.random.default_rng(4), SHAPE, 12, density=0.08)
    options = dict(smoothing=2, min_confidence=0.3, min_output_spikes=3, switch_margin=0.15)
    with PredictionEngine(network, settings(clear_every=3, **options)) as engine:
        decisions = [d for frame in as_frames(data) for d in engine.push(frame)]
    prediction = RunningPrediction(network.num_outputs, **options)
    expected = [prediction.update(d.counts, d.t_us, d.frame_index) for d in decisions]
    assert [(d.label, d.confidence) for d in decisions] == [(e.label, e.confidence) for e in expected]


def test_decide_stream_is_the_offline_transform_then_run_sample(network):
    rng = np.random.default_rng(6)
    n, per_frame, clear_every = 23_500, 500, 4
    events = np.zeros(n, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    events["t"] = np.sort(rng.integers(0, 2_000_000, n))
    events["x"], events["y"], events["p"] = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    batches = np.split(events, np.sort(rng.integers(0, n, 40)))
    decisions = list(decide_stream(batches, (128, 128), network,
                                   settings(backend="fast-sparse", events_per_frame=per_frame,
                                            clear_every=clear_every, drain_steps=2)))
    window_events = per_frame * clear_every
    backend = make_backend("fast", network)
    expected = [run_sample(backend, integrate_sample(events[k * window_events:(k + 1) * window_events],
                                                     clear_every, (128, 128)), 2).tolist()
                for k in range(n // window_events)]
    assert [d.counts.tolist() for d in decisions] == expected
    assert len({tuple(c) for c in expected}) > 1
    last_event = [(k + 1) * window_events - 1 for k in range(len(expected))]
    assert [d.t_us for d in decisions] == events["t"][last_event].tolist()
    assert [d.frame_index for d in decisions] == [(k + 1) * clear_every - 1 for k in range(len(expected))]


def test_fast_backend_gets_one_torch_thread(network, monkeypatch):
    seen = []
    monkeypatch.setattr(engine_module, "make_backend",
                        lambda name, net, **options: seen.append((name, options)) or make_backend(name, net, **options))
    PredictionEngine(network, settings(backend="fast")).close()
    PredictionEngine(network, settings(backend="fast-sparse")).close()
    assert seen == [("fast", {"threads": 1}), ("fast-sparse", {})]


def test_a_quiet_scene_says_no_gesture_at_once_and_in_its_windows():
    """Forced network, windows of 2 frames of 10 events: frames 0-3 at 1 event/ms (1,111 events/s over a
    frame's 9 ms), frames 4-5 at one event per 10 ms (111 events/s). With min_event_rate 500, frame 4
    (after the busy frame 3, inside a window) makes a "no gesture" decision at once and window 2
    (frames 4-5) decides "no gesture" whatever its counts; with 0 the counts decide."""
    from livegesture.evaluate.streaming import replay_policy
    from livegesture.evaluate.testing import HAND_WINDOWS, forced_events, forced_network

    busy = forced_events([0, 0, 3, 3], 10, 1_000, 1_000)
    calm = forced_events([3, 3], 10, int(busy["t"][-1]) + 10_000, 10_000)
    events = np.concatenate([busy, calm])
    base = PipelineSettings(**HAND_WINDOWS)
    gated = list(decide_stream((events,), (128, 128), forced_network(), base.replace(min_event_rate=500.0)))
    assert [(d.label, d.frame_index, d.quiet, d.window) for d in gated] == [
        (0, 1, False, True), (3, 3, False, True), (None, 4, True, False), (None, 5, True, True)]
    assert gated[2].t_us == int(calm["t"][9])
    plain = list(decide_stream((events,), (128, 128), forced_network(), base.replace(min_event_rate=0.0)))
    assert [(d.label, d.quiet) for d in plain] == [(0, False), (3, False), (3, False)]
    replayed = replay_policy(gated, base.replace(min_event_rate=500.0), 11)
    assert [(d.label, d.t_us, d.quiet, d.window) for d in replayed] == [(d.label, d.t_us, d.quiet, d.window)
                                                                         for d in gated]


def test_the_median_frame_time_is_not_swayed_by_a_slow_first_frame(network, monkeypatch):
    import time

    step, calls = PredictionEngine._step, []

    def first_slow(self, backend, inputs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.2)
        return step(self, backend, inputs)

    monkeypatch.setattr(PredictionEngine, "_step", first_slow)
    data = random_frames(np.random.default_rng(3), SHAPE, 9, density=0.08)
    with PredictionEngine(network, settings(clear_every=100)) as engine:
        for frame in as_frames(data):
            engine.push(frame)
        assert engine.step_stats.mean_frame_ms > 200 / 9
        assert engine.median_frame_ms < 20  # the other 8 frames: one quick step each
