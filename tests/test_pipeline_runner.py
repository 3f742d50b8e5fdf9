"""The threaded pipeline: lossless and live drop accounting, latency, live settings, stop and failures."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from livegesture.backends import make_backend
from livegesture.backends.testing import random_network
from livegesture.events import EventFormatError, make_events
from livegesture.model.files import ModelFileError, ModelInfo, load_model, save_model
from livegesture.pipeline import engine as engine_module
from livegesture.pipeline.engine import PredictionEngine, decide_stream
from livegesture.pipeline.queues import QueueClosed, StageQueue
from livegesture.pipeline.runner import Pipeline, PipelineUpdate
from livegesture.pipeline.settings import PipelineSettings, SettingsError
from livegesture.pipeline.stats import RateMeter
from livegesture.sources import open_source
from livegesture.sources.base import EventSource
from livegesture.sources.replay import ReplaySource

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "recordings" / "demo_fluorescent.aedat4"
SIZE = (128, 128)
WAIT_S = 20.0
"""Longest wait for the pipeline to get somewhere (a generous bound for a busy machine)."""


def random_events(rng: np.random.Generator, n: int, span_us: int = 1_000_000, start_us: int = 0) -> np.ndarray:
    t = start_us + np.sort(rng.integers(0, span_us, n))
    return make_events(t, rng.integers(0, SIZE[0], n), rng.integers(0, SIZE[1], n), rng.integers(0, 2, n))


class MemorySource(EventSource):
    """Batches held in memory, or fed while running through ``feed`` (then ``end``)."""

    def __init__(self, batches: list[np.ndarray] | None = None, *, fail_after: int | None = None) -> None:
        self.name = "memory"
        self.sensor_size = SIZE
        self.fail_after = fail_after
        self._queue: queue.Queue = queue.Queue()
        for batch in batches or []:
            self._queue.put(batch)
        if batches is not None:
            self._queue.put(None)

    def feed(self, batch: np.ndarray) -> None:
        self._queue.put(batch)

    def end(self) -> None:
        self._queue.put(None)

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in itertools.count():
            batch = self._queue.get()
            if batch is None:
                return
            if k == self.fail_after:
                raise EventFormatError(self.name, "broken at batch 1")
            yield batch

    def close(self) -> None:
        self._queue.put(None)


@pytest.fixture(scope="module")
def network():
    return random_network(np.random.default_rng(5), channels=4, input_shape=(2, 63, 63), num_classes=5,
                          threshold=60, weights=(-80, 80))


def settings(**changes) -> PipelineSettings:
    base = dict(backend="fast", events_per_frame=500, clear_every=4, drain_steps=2, smoothing=1,
                min_confidence=0.0, min_output_spikes=0, switch_margin=0.0, speed=0.0)
    return PipelineSettings(**{**base, **changes})


class SlowBackend:
    """A real backend whose every step takes ``delay`` seconds more."""

    def __init__(self, backend, delay: float) -> None:
        self.backend, self.delay = backend, delay
        self.num_outputs = backend.num_outputs

    def step(self, inputs=None):
        time.sleep(self.delay)
        return self.backend.step(inputs)

    def reset(self) -> None:
        self.backend.reset()

    def close(self) -> None:
        self.backend.close()


@pytest.fixture
def stepped(monkeypatch) -> Callable[[float], list[int]]:
    """Slow every backend step down by ``delay`` seconds; the indices of the frames the worker stepped."""
    indices: list[int] = []
    push = PredictionEngine.push

    def recording_push(engine, frame):
        indices.append(frame.index)
        return push(engine, frame)

    def slow(delay: float) -> list[int]:
        monkeypatch.setattr(engine_module, "make_backend",
                            lambda name, net, **options: SlowBackend(make_backend(name, net, **options), delay))
        monkeypatch.setattr(PredictionEngine, "push", recording_push)
        return indices

    return slow


def run_until(pipeline: Pipeline, done: Callable[[PipelineUpdate], bool], seen: list | None = None,
              events: list | None = None) -> PipelineUpdate:
    """Poll until ``done(update)``, collecting decisions and overlay events; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        update = pipeline.poll()
        if seen is not None:
            seen.extend(update.decisions)
        if events is not None and len(update.events):
            events.append(update.events)
        if done(update):
            return update
        assert time.monotonic() < deadline, f"pipeline stuck: {update.stats}, error {update.error}"
        time.sleep(0.01)


def finished(update: PipelineUpdate) -> bool:
    assert update.error is None, update.error
    return update.finished


def same_decisions(a: list, b: list) -> bool:
    key = lambda d: (d.label, d.counts.tolist(), d.t_us, d.frame_index)  # noqa: E731
    return [key(d) for d in a] == [key(d) for d in b]


def test_lossless_replay_of_a_recording_at_max_speed_decides_as_decide_stream():
    with open_source(RECORDING) as recording:
        batches = list(recording)
    n = sum(map(len, batches))
    chosen = PipelineSettings(backend="fast", speed=0.0, lossless=True)
    decisions: list = []
    with Pipeline(open_source(RECORDING), settings=chosen) as pipeline:
        stats = run_until(pipeline, finished, decisions).stats
    assert stats.events_in == stats.events_integrated == n
    assert stats.frames == stats.frames_stepped == n // chosen.events_per_frame
    assert stats.dropped_frames == stats.dropped_batches == stats.dropped_events == 0
    expected = list(decide_stream(batches, SIZE, load_model(chosen.model).network, chosen))
    assert len(expected) == n // (chosen.events_per_frame * chosen.clear_every) and same_decisions(decisions, expected)


def test_lossless_replay_waits_for_a_slow_worker_and_loses_nothing(network, stepped):
    indices = stepped(0.0005)
    events = random_events(np.random.default_rng(1), 30_000)
    batches = np.array_split(events, 300)
    chosen = settings(lossless=True)
    decisions: list = []
    with Pipeline(MemorySource(batches), network, chosen) as pipeline:
        stats = run_until(pipeline, finished, decisions).stats
    assert stats.events_in == stats.events_integrated == len(events)
    assert indices == list(range(len(events) // 500)) and stats.frames_stepped == len(indices)
    assert stats.dropped_frames == stats.dropped_batches == 0
    assert same_decisions(decisions, list(decide_stream(batches, SIZE, network, chosen)))


def test_a_live_replay_drops_the_oldest_frames_and_counts_them(network, stepped):
    indices = stepped(0.003)
    events = random_events(np.random.default_rng(2), 40_000)
    # no quiet-scene gate: a frame whose events straddle dropped batches spans a gap in time and
    # reads as a quiet scene (500 events over more than 83 ms), with a decision of its own
    chosen = settings(min_event_rate=0.0)
    with Pipeline(MemorySource(np.array_split(events, 40)), network, chosen) as pipeline:
        stats = run_until(pipeline, finished).stats
    assert stats.events_in == len(events) == stats.events_integrated + stats.dropped_events
    assert stats.frames == stats.events_integrated // 500
    assert stats.dropped_frames > 0 and stats.frames == stats.frames_stepped + stats.dropped_frames
    assert len(indices) == stats.frames_stepped and indices == sorted(indices)
    assert indices[-1] == stats.frames - 1, "the newest frame is never the one dropped"
    assert stats.decisions == stats.frames_stepped // 4, "the schedule counts stepped frames"


def test_latency_runs_from_the_hand_over_to_the_decision(network, stepped):
    stepped(0.01)
    rng = np.random.default_rng(3)
    batches = [random_events(rng, 500, 1000, start_us=k * 60_000) for k in range(8)]  # a frame every 60 ms
    with Pipeline(MemorySource(batches), network, settings(clear_every=2, drain_steps=2, speed=1.0)) as pipeline:
        stats = run_until(pipeline, finished).stats
    assert stats.decisions == 4 and stats.dropped_frames == 0
    # a decision's frame: its own step and 2 drain steps after the hand-over; frames alternate 1 and 3 steps
    assert 30 <= stats.latency_ms_mean <= stats.latency_ms_p95 < 300
    assert stats.step_ms >= 10 and stats.frame_ms >= 20


class Fed:
    """A pipeline over a source fed batch by batch, its decisions and overlay events collected."""

    def __init__(self, network, chosen: PipelineSettings) -> None:
        self.source = MemorySource()
        self.pipeline = Pipeline(self.source, network, chosen).start()
        self.decisions: list = []
        self.events: list = []
        self.rng = np.random.default_rng(4)
        self.t = 0

    def feed(self, n: int) -> np.ndarray:
        batch = random_events(self.rng, n, 10_000, start_us=self.t)
        self.t = int(batch["t"][-1])
        self.source.feed(batch)
        return batch

    def until(self, done: Callable[[PipelineUpdate], bool]) -> PipelineUpdate:
        return run_until(self.pipeline, done, self.decisions, self.events)


def test_settings_change_while_running(network, tmp_path):
    fed = Fed(network, settings(lossless=True))
    try:
        sent = [fed.feed(500) for _ in range(8)]
        fed.until(lambda u: u.stats.decisions == 2)
        assert [d.frame_index for d in fed.decisions] == [3, 7]
        np.testing.assert_array_equal(np.concatenate(fed.events), np.concatenate(sent))

        fed.pipeline.update_settings(clear_every=2, events_per_frame=250)
        fed.feed(1000)
        fed.until(lambda u: u.stats.decisions == 4)
        assert [d.frame_index for d in fed.decisions] == [3, 7, 9, 11]

        with pytest.raises(SettingsError, match="setting drain_steps"):
            fed.pipeline.update_settings(drain_steps=-2)
        missing = tmp_path / "missing.npz"
        fed.pipeline.update_settings(model=str(missing))
        update = fed.until(lambda u: u.warning is not None)
        assert str(missing) in update.warning and update.running and update.error is None
        # the refused model is not in force, and the update says so: the display needs nothing else
        assert fed.pipeline.settings.model == PipelineSettings().model == update.settings.model
        assert update.switching is None
        assert update.settings.clear_every == 2 and update.class_names == fed.pipeline.class_names
        assert update.backend == "fast"
        later = fed.pipeline.poll()
        assert later.warning is None and later.switching is None, "a refused change is reported once, not retried"
        fed.pipeline.update_settings(model=str(missing))  # asked for again: tried and reported again
        assert str(missing) in fed.until(lambda u: u.warning is not None).warning

        fed.pipeline.update_settings(backend="fast-sparse")
        fed.feed(500)
        fed.until(lambda u: u.stats.decisions == 5)
        assert fed.decisions[-1].frame_index == 13 and fed.pipeline.settings.backend == "fast-sparse"
    finally:
        assert fed.pipeline.stop()


def test_step_releases_one_frame_at_a_time_while_paused(network):
    # 5 events per 10 ms replay slice: a frame of 500 events is a burst of 100 slices, more than
    # the event queue holds; none of them may be dropped
    events = random_events(np.random.default_rng(5), 5_000, 10_000_000)
    replay = ReplaySource(MemorySource([events]), speed=1.0)
    replay.pause()
    with Pipeline(replay, network, settings(speed=1.0)) as pipeline:
        for frames in (1, 2, 3):
            pipeline.step()
            update = run_until(pipeline, lambda u: u.stats.frames >= frames)
            time.sleep(0.1)
            stats = pipeline.poll().stats
            assert stats.frames == frames == update.frame.index + 1 and stats.dropped_batches == 0
        assert pipeline.paused


@pytest.mark.parametrize("case", ["full queues", "paused replay"])
def test_stop_ends_every_thread_promptly(network, stepped, case):
    events = random_events(np.random.default_rng(6), 60_000)
    if case == "full queues":
        stepped(0.2)
        source: EventSource = MemorySource(np.array_split(events, 600))
        chosen = settings(lossless=True)
    else:
        source = ReplaySource(MemorySource([events]))
        source.pause()
        chosen = settings(speed=1.0)
    pipeline = Pipeline(source, network, chosen).start()
    if case == "full queues":
        run_until(pipeline, lambda u: u.stats.event_queue_depth > 0 and u.stats.frame_queue_depth > 0)
    else:
        time.sleep(0.1)
    start = time.monotonic()
    assert pipeline.stop(timeout=3.0) and time.monotonic() - start < 2.0
    assert pipeline.stop() and not pipeline.poll().running


def test_a_failing_source_stops_the_pipeline_with_its_message(network):
    events = random_events(np.random.default_rng(7), 2_000)
    pipeline = Pipeline(MemorySource([events, events], fail_after=1), network, settings()).start()
    update = run_until(pipeline, lambda u: u.error is not None)
    assert update.error == "source: memory: broken at batch 1"
    assert pipeline.stop() and not pipeline.poll().running and pipeline.poll().error == update.error


def test_a_backend_that_cannot_start_is_reported_not_raised(network):
    pipeline = Pipeline(MemorySource([]), network, settings(backend="cri")).start()
    update = run_until(pipeline, lambda u: u.error is not None)
    assert update.error.startswith("worker: ") and "CRI" in update.error
    assert pipeline.stop()


def test_stage_queue_live_drops_the_oldest():
    q: StageQueue[int] = StageQueue(2)
    assert [q.put(k, block=False) for k in range(5)] == [None, None, 0, 1, 2]
    assert [q.get(0.0), q.get(0.0), q.get(0.0)] == [3, 4, None]


def test_stage_queue_lossless_waits_for_room_and_close_wakes_everyone():
    q: StageQueue[int] = StageQueue(1)
    q.put(1, block=True)
    done = []
    producer = threading.Thread(target=lambda: done.append(q.put(2, block=True)))
    producer.start()
    time.sleep(0.05)
    assert done == [] and len(q) == 1
    assert q.get(1.0) == 1
    producer.join(1.0)
    assert done == [None] and q.get(0.0) == 2

    q.put(3, block=True)
    errors = []

    def blocked_put():
        try:
            q.put(4, block=True)
        except QueueClosed:
            errors.append("closed")

    producer = threading.Thread(target=blocked_put)
    producer.start()
    time.sleep(0.05)
    q.close()
    producer.join(1.0)
    assert errors == ["closed"]
    with pytest.raises(QueueClosed):
        q.get(1.0)


def test_rate_meter_measures_over_the_recent_window():
    meter = RateMeter(window_s=2.0)
    assert meter.update(10.0, 0) == 0.0
    assert meter.update(11.0, 100) == 100.0
    assert meter.update(12.0, 400) == 200.0          # (400 - 0) / 2 s
    assert meter.update(13.0, 400) == 150.0          # the 10 s sample left: (400 - 100) / 2 s


def test_the_first_update_warns_once_of_a_sensor_the_model_was_not_trained_on(network, tmp_path):
    events = random_events(np.random.default_rng(4), 4_000, 200_000)
    davis = save_model(tmp_path / "davis.npz", network, ModelInfo(class_names=tuple("abcde"), sensor_size=(346, 260)))
    pipeline = Pipeline(MemorySource([events]), settings=settings(model=str(davis))).start()
    try:
        warnings = [pipeline.poll().warning]
        update = run_until(pipeline, finished)
        warnings.append(update.warning)
    finally:
        pipeline.stop()
    assert warnings == ["the model was trained on a 346x260 sensor, not this 128x128 one: the region of interest "
                        "of each is mapped to the 128x128 field at another scale, so gestures may appear at another "
                        "size and the predictions may be wrong", None]
    dvs128 = save_model(tmp_path / "dvs128.npz", network, ModelInfo(class_names=tuple("abcde")))
    with Pipeline(MemorySource([events]), settings=settings(model=str(dvs128))) as same:
        assert same.poll().warning is None


def test_a_recording_holds_every_event_handed_over_and_stop_finalises_it(network, tmp_path):
    events = random_events(np.random.default_rng(8), 12_000, 300_000)
    path = tmp_path / "session.aedat4"
    pipeline = Pipeline(MemorySource(np.array_split(events, 30)), network, settings(lossless=True))
    recorder = pipeline.start_recording(path)
    assert pipeline.recorder is recorder
    recorder.begin(3, t_us=int(events["t"][100]))
    pipeline.start()
    run_until(pipeline, finished)
    assert pipeline.stop() and pipeline.recorder is None and recorder.closed
    with open_source(path) as recording:
        np.testing.assert_array_equal(np.concatenate(list(recording)), events)
        assert [(s.label, s.start_us, s.end_us) for s in recording.labels] == [
            (3, int(events["t"][100]), int(events["t"][-1]))]


def test_a_model_that_cannot_load_closes_the_source(tmp_path):
    closed = []

    class Tracked(MemorySource):
        def close(self) -> None:
            closed.append(True)
            super().close()

    with pytest.raises(ModelFileError, match="no such model file"):
        Pipeline(Tracked([]), settings=settings(model=str(tmp_path / "missing.npz")))
    assert closed == [True]


def test_a_model_switch_publishes_the_new_class_names(network, tmp_path):
    other = random_network(np.random.default_rng(6), channels=4, input_shape=(2, 63, 63), num_classes=3,
                           threshold=60, weights=(-80, 80))
    path = save_model(tmp_path / "three.npz", other, ModelInfo(class_names=("left", "right", "still")))
    fed = Fed(network, settings(lossless=True))
    try:
        assert fed.pipeline.poll().class_names == tuple(f"class {k}" for k in range(5))
        fed.pipeline.update_settings(model=str(path))
        fed.feed(500 * 4)
        update = fed.until(lambda u: u.class_names == ("left", "right", "still"))
        assert update.settings.model == str(path) and update.warning is None
        fed.until(lambda u: u.stats.decisions >= 1)
        assert all(len(d.counts) == 3 for d in fed.decisions)  # the new net decides
    finally:
        assert fed.pipeline.stop()
