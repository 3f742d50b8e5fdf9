"""The evaluation's process pool: results from every worker, and a dead worker ends the run
instead of hanging it."""

from __future__ import annotations

import os

from livegesture.evaluate.pool import run_pool

DYING_TASK = 3


def nothing() -> None:
    """Worker initializer."""


def square(n: int) -> int:
    return n * n


def square_or_die(n: int) -> int:
    if n == DYING_TASK:
        os._exit(1)  # a worker killed mid-task (out of memory, say)
    return n * n


def test_the_pool_returns_every_result():
    run = run_pool(square, list(range(20)), workers=2, initializer=nothing)
    assert sorted(run.results) == [n * n for n in range(20)] and not run.interrupted


def test_a_dead_worker_ends_the_run_with_what_finished(capsys):
    run = run_pool(square_or_die, list(range(8)), workers=2, initializer=nothing)
    assert DYING_TASK in run.unfinished
    assert sorted(run.results + [n * n for n in run.unfinished]) == [n * n for n in range(8)]
    assert set(run.results) <= {n * n for n in range(8) if n != DYING_TASK}
    assert "worker process died" in capsys.readouterr().err
