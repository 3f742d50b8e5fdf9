"""The evaluation's process pool: results from every worker; a dead or stuck worker is replaced
and its task reported; Ctrl-C and SIGTERM stop it at once, keeping what finished; its workers
never outlive it."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from livegesture.evaluate.pool import SHUTDOWN_GRACE_S, run_pool
from livegesture.evaluate.testing import InterruptedAt

DYING_TASK = 3
STUCK_TASK = 2


def nothing() -> None:
    """Worker initializer."""


def note_pid(folder: str) -> None:
    """Worker initializer: leave a file named by this worker's process id in ``folder``."""
    Path(folder, str(os.getpid())).touch()


def square(n: int) -> int:
    return n * n


def square_or_die(n: int) -> int:
    if n == DYING_TASK:
        os._exit(1)  # a worker killed mid-task (out of memory, say)
    return n * n


def square_or_hang(n: int) -> int:
    """Task STUCK_TASK blocks in native code holding the GIL, as dv-processing does on a corrupt packet."""
    if n == STUCK_TASK:
        ctypes.PyDLL(None).sleep(1000)
    return n * n


def sleep_then_square(n: int) -> int:
    time.sleep(n / 10)
    return n * n


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split(") ")[1][0] != "Z"


def test_the_pool_returns_every_result():
    run = run_pool(square, list(range(20)), workers=2, initializer=nothing)
    assert sorted(run.results) == [n * n for n in range(20)] and not run.interrupted and not run.failed


def test_a_dead_worker_is_replaced_and_its_task_reported():
    run = run_pool(square_or_die, list(range(8)), workers=2, initializer=nothing)
    assert run.failed == [(DYING_TASK, "its worker process died (exit code 1)")]
    assert sorted(run.results) == [n * n for n in range(8) if n != DYING_TASK] and not run.unfinished


@pytest.mark.parametrize("workers", [1, 2])
def test_the_watchdog_stops_a_stuck_task_and_the_others_finish(workers):
    start = time.monotonic()
    run = run_pool(square_or_hang, list(range(6)), workers=workers, initializer=nothing, timeout_s=1.0)
    assert time.monotonic() - start < 6
    assert run.failed == [(STUCK_TASK, "stopped after 1 s without finishing")]
    assert sorted(run.results) == [n * n for n in range(6) if n != STUCK_TASK] and not run.unfinished


def test_first_ctrl_c_stops_at_once_keeps_results_and_kills_the_workers(tmp_path):
    start = time.monotonic()
    # one worker sticks on task 2; the third result through the other is a Ctrl-C
    run = run_pool(square_or_hang, list(range(40)), workers=2, initializer=note_pid, initargs=(str(tmp_path),),
                   on_result=InterruptedAt(3).update)
    assert time.monotonic() - start < 5 + SHUTDOWN_GRACE_S
    assert run.interrupted and STUCK_TASK in run.unfinished
    assert len(run.results) >= 3 and set(run.results) <= {n * n for n in range(40)}
    assert len(run.results) + len(run.unfinished) == 40
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert pids and not any(alive(pid) for pid in pids)


def test_a_task_that_finishes_while_shutting_down_is_kept():
    # task 4 ends after 0.4 s and its result is a Ctrl-C; task 8, on the other worker, ends 0.4 s later
    run = run_pool(sleep_then_square, [8, 4, 1, 2], workers=2, initializer=nothing, on_result=InterruptedAt(1).update)
    assert sorted(run.results) == [16, 64] and run.unfinished == [1, 2]
    assert 0.4 < SHUTDOWN_GRACE_S


CHILD = textwrap.dedent("""
    import sys
    from livegesture.cli import _interrupt
    from livegesture.evaluate.pool import run_pool
    import signal
    sys.path.insert(0, {tests!r})
    from test_eval_pool import note_pid, square_or_hang
    signal.signal(signal.SIGTERM, _interrupt)
    run = run_pool(square_or_hang, list(range(4)), workers=2, initializer=note_pid, initargs=({pids!r},),
                   timeout_s=600,
                   on_result=lambda r: print("result", r, flush=True))
    print("kept", sorted(run.results), "not run", run.unfinished, flush=True)
""")


def start_child(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A process running the pool over 4 tasks, task 2 stuck; returns once both workers started."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent), pids=str(tmp_path))],
                             env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the quick tasks finish meanwhile
    return child, [int(p.name) for p in tmp_path.iterdir()]


def test_sigterm_stops_the_pool_like_ctrl_c_keeping_results(tmp_path):
    child, pids = start_child(tmp_path)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=10)
    assert child.returncode == 0
    assert "kept [0, 1, 9] not run [2]" in out
    assert not any(alive(pid) for pid in pids)


def test_workers_die_with_a_killed_parent(tmp_path):
    child, pids = start_child(tmp_path)
    child.kill()
    child.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)
