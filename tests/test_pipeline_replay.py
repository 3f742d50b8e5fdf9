"""ReplaySource.step: single steps through a paused replay (used by the pipeline's frame step)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from livegesture.events import make_events
from livegesture.sources.replay import ReplaySource
from test_replay import FakeTime, ListSource


def at(*t: int) -> np.ndarray:
    n = len(t)
    return make_events(t, np.arange(n), np.arange(n), np.arange(n) % 2)


class Collector:
    """Iterates a replay on a thread, keeping what came out."""

    def __init__(self, replay: ReplaySource) -> None:
        self.slices: list[list[int]] = []
        self.thread = threading.Thread(target=lambda: self.slices.extend(p["t"].tolist() for p in replay))
        self.thread.start()

    def wait_for(self, count: int) -> list[list[int]]:
        deadline = time.monotonic() + 5.0
        while len(self.slices) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # and nothing more comes out
        return list(self.slices)


def test_step_releases_whole_slices_until_enough_events_then_resume_paces_from_there():
    fake = FakeTime()
    # 10 ms slices: [0, 1000, 2000] [10000] [20000, 21000] [30000] [50000]
    batches = [at(0, 1000, 2000, 10_000, 20_000, 21_000, 30_000, 50_000)]
    replay = ReplaySource(ListSource(batches), speed=1.0, clock=fake.clock, sleep=fake.sleep)
    replay.pause()
    out = Collector(replay)
    assert out.wait_for(0) == []
    replay.step(2)                               # one slice of 3 events is enough
    assert out.wait_for(1) == [[0, 1000, 2000]]
    replay.step(2)                               # needs two slices of 1 and 2 events
    assert out.wait_for(3) == [[0, 1000, 2000], [10_000], [20_000, 21_000]]
    assert fake.sleeps == [], "steps are not paced"
    released_at = fake.now
    replay.resume()                              # the next slice is 9 ms of event time after the last step
    out.thread.join(5.0)
    assert out.slices[3:] == [[30_000], [50_000]]
    assert sum(fake.sleeps) == pytest.approx((50_000 - 21_000) / 1e6)
    assert fake.now == pytest.approx(released_at + 0.029)


def test_step_does_nothing_while_playing_and_close_ends_a_paused_replay():
    replay = ReplaySource(ListSource([at(0, 20_000)]), speed=None)
    replay.step(5)
    assert [p["t"].tolist() for p in replay] == [[0], [20_000]]
    replay.pause()
    out = Collector(replay)
    replay.close()
    out.thread.join(5.0)
    assert not out.thread.is_alive() and out.slices == []
