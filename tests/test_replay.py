"""Paced replay: lossless, paced by event time on a fake clock, controllable while running."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from livegesture.events import make_events
from livegesture.sources.base import EventSource
from livegesture.sources.replay import MAX_SLEEP_S, ReplaySource

SIZE = (128, 128)


class ListSource(EventSource):
    """A recording held in memory; restarts on each iteration like the file sources."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self.name = "memory"
        self.sensor_size = SIZE
        self.batches = batches
        self.closed = False

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self.batches

    def close(self) -> None:
        self.closed = True


class FakeTime:
    """A clock that only moves when slept on; records every requested sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def at(*t: int) -> np.ndarray:
    n = len(t)
    return make_events(t, np.arange(n) % SIZE[0], (np.arange(n) * 3) % SIZE[1], np.arange(n) % 2)


def paced(batches: list[np.ndarray], **options) -> tuple[ReplaySource, FakeTime]:
    fake = FakeTime()
    return ReplaySource(ListSource(batches), clock=fake.clock, sleep=fake.sleep, **options), fake


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_sleep_schedule_matches_the_timestamps(speed):
    # 10 ms slices: [0, 4000] [12000, 12500] [30000]; each is due when its last event is,
    # counted from the first event: 4 ms, 12.5 ms, 30 ms of event time
    replay, fake = paced([at(0, 4000, 12000, 12500), at(30000)], speed=speed, max_batch_us=10_000)
    released = [(piece["t"].tolist(), fake.now) for piece in replay]
    assert [t for t, _ in released] == [[0, 4000], [12000, 12500], [30000]]
    assert fake.sleeps == pytest.approx([0.004 / speed, 0.0085 / speed, 0.0175 / speed])
    assert [now for _, now in released] == pytest.approx([100 + 0.004 / speed, 100 + 0.0125 / speed, 100 + 0.03 / speed])


def test_long_gaps_sleep_in_short_steps():
    replay, fake = paced([at(0, 120_000)])
    assert len(list(replay)) == 2
    assert fake.sleeps == pytest.approx([MAX_SLEEP_S, MAX_SLEEP_S, 0.12 - 2 * MAX_SLEEP_S])


@pytest.mark.parametrize("speed", [1.0, 7.5, None, math.inf])
def test_every_event_comes_out_once_in_order(speed):
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 300_000, 5000))
    events = make_events(t, rng.integers(0, 128, t.size), rng.integers(0, 128, t.size), rng.integers(0, 2, t.size))
    batches = np.split(events, [1, 700, 701, 3000])
    replay, fake = paced(batches, speed=speed, max_batch_us=10_000)
    pieces = list(replay)
    assert np.array_equal(np.concatenate(pieces), events)
    assert all(p.size and p["t"][-1] - p["t"][0] < 10_000 for p in pieces)
    if speed in (None, math.inf):
        assert fake.sleeps == []
    else:
        assert sum(fake.sleeps) == pytest.approx((t[-1] - t[0]) / 1e6 / speed)


def test_speed_change_mid_stream():
    replay, fake = paced([at(0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000)], max_batch_us=5_000)
    out = []
    for piece in replay:
        out.append(int(piece["t"][0]))
        if out[-1] == 20_000:
            replay.speed = 2.0  # the replay clock is at 20 ms of event time: 10 ms steps now take 5 ms
        elif out[-1] == 40_000:
            replay.speed = None
    assert out == [0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000]
    assert fake.sleeps == pytest.approx([0.01, 0.01, 0.005, 0.005])
    assert replay.speed is None
    with pytest.raises(ValueError, match="speed must be positive"):
        replay.speed = 0


def test_pause_freezes_the_replay_clock():
    replay, fake = paced([at(0, 10_000, 20_000)], max_batch_us=5_000)
    it = iter(replay)
    next(it)
    next(it)
    replay.pause()
    fake.now += 5.0  # time passes while paused
    replay.resume()
    next(it)
    assert fake.sleeps == pytest.approx([0.01, 0.01])  # not released early to catch up


def test_pause_blocks_output_until_resumed():
    replay = ReplaySource(ListSource([at(0, 10, 20)]), speed=None, max_batch_us=5)
    it = iter(replay)
    assert next(it)["t"].tolist() == [0]
    replay.pause()
    assert replay.paused
    got: list[np.ndarray] = []
    consumer = threading.Thread(target=lambda: got.extend(it), daemon=True)
    consumer.start()
    consumer.join(0.1)
    assert got == [] and consumer.is_alive()
    replay.resume()
    consumer.join(1.0)
    assert [p["t"].tolist() for p in got] == [[10], [20]]


def test_loop_restarts_with_shifted_time_and_close_stops_it():
    source = ListSource([at(100, 150), at(400)])  # slices never merge batches: two per pass
    replay = ReplaySource(source, speed=None, loop=True, max_batch_us=1000)
    it = iter(replay)
    passes = []
    for _ in range(3):
        pieces, offsets = zip(*[(next(it), replay.offset_us) for _ in range(2)])
        assert len(set(offsets)) == 1
        passes.append((np.concatenate(pieces), offsets[0]))
    assert [(p["t"].tolist(), offset) for p, offset in passes] == [
        ([100, 150, 400], 0),
        ([400, 450, 700], 300),  # a pass starts where the one before ended
        ([700, 750, 1000], 600),
    ]
    for events, _ in passes:
        assert np.array_equal(events[["x", "y", "p"]], np.concatenate(source.batches)[["x", "y", "p"]])
    replay.close()
    assert source.closed
    assert list(it) == []


def test_loop_over_an_empty_recording_ends():
    assert list(ReplaySource(ListSource([at()]), speed=None, loop=True)) == []
