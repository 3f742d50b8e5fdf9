"""The evaluation's process pool: results from every worker, and a dead worker ends the run
instead of hanging it."""

from __future__ import annotations

import os

import pytest

from livegesture.evaluate import pool
from livegesture.evaluate.pool import pool_pays, run_pool

DYING_TASK = 3


def nothing() -> None:
    """Worker initializer."""


def square(n: int) -> int:
    return n * n


def square_or_die(n: int) -> int:
    if n == DYING_TASK:
        os._exit(1)  # a worker killed mid-task (out of memory, say)
    return n * n


@pytest.fixture
def free_start_up(monkeypatch):
    """A pool that costs nothing to start: it always pays, so the workers run."""
    monkeypatch.setattr(pool, "POOL_STARTUP_S", 0.0)


def test_the_pool_returns_every_result(free_start_up):
    run = run_pool(square, list(range(20)), workers=2, initializer=nothing)
    assert sorted(run.results) == [n * n for n in range(20)] and not run.interrupted


def test_a_dead_worker_ends_the_run_with_what_finished(capsys, free_start_up):
    run = run_pool(square_or_die, list(range(8)), workers=2, initializer=nothing)
    assert DYING_TASK in run.unfinished
    assert sorted(run.results + [n * n for n in run.unfinished]) == [n * n for n in range(8)]
    assert set(run.results) <= {n * n for n in range(8) if n != DYING_TASK}
    assert "worker process died" in capsys.readouterr().err


def process_id(_: int) -> int:
    return os.getpid()


def test_work_shorter_than_the_start_up_stays_in_this_process():
    run = run_pool(process_id, list(range(6)), workers=2, initializer=nothing)
    assert run.results == [os.getpid()] * 6


def test_work_that_pays_goes_to_the_workers(free_start_up):
    run = run_pool(process_id, list(range(6)), workers=2, initializer=nothing)
    assert run.results[0] == os.getpid() and os.getpid() not in run.results[1:]


@pytest.mark.parametrize("rest_s, workers, startup_s, pays", [
    (7.0, 2, 3.0, True),    # 3 + 7 / 2 = 6.5 < 7
    (6.0, 2, 3.0, False),   # 3 + 6 / 2 = 6: no gain
    (4.0, 4, 3.0, False),   # 3 + 1 = 4
    (4.5, 4, 3.0, True),    # 3 + 1.125 < 4.5
    (100.0, 1, 0.0, False),  # one worker is this process
])
def test_break_even(rest_s, workers, startup_s, pays):
    assert pool_pays(rest_s, workers, startup_s) is pays
