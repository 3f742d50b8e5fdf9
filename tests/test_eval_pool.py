"""The evaluation's process pool: results from every worker; a dead or stuck worker is replaced
and its task reported; Ctrl-C and SIGTERM stop it at once, keeping what finished; its workers
never outlive it."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from livegesture.evaluate import pool
from livegesture.evaluate.per_sample import EvaluatorSpec, TaskOutcome, evaluate_task, init_worker
from livegesture.evaluate.pool import SHUTDOWN_GRACE_S, pool_pays, run_pool, startup_seconds
from livegesture.evaluate.testing import HAND_SEGMENTS, InterruptedAt, write_hand_stream

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




def always_pays(rest_s: float, workers: int) -> bool:
    """A pool that costs nothing to start: more than one worker always pays."""
    return workers > 1


@pytest.fixture
def free_start_up(monkeypatch):
    """The pool always pays, so that all its workers run."""
    monkeypatch.setattr(pool, "pool_pays", always_pays)


def test_the_pool_returns_every_result(free_start_up):
    run = run_pool(square, list(range(20)), workers=2, initializer=nothing)
    assert sorted(run.results) == [n * n for n in range(20)] and not run.interrupted and not run.failed


@pytest.mark.parametrize("timeout_s", [None, 60.0], ids=["no watchdog", "watchdog"])
def test_a_dead_worker_is_replaced_and_its_task_reported(free_start_up, timeout_s):
    run = run_pool(square_or_die, list(range(8)), workers=2, initializer=nothing, timeout_s=timeout_s)
    assert run.failed == [(DYING_TASK, "its worker process died (exit code 1)")]
    assert sorted(run.results) == [n * n for n in range(8) if n != DYING_TASK] and not run.unfinished


@pytest.mark.parametrize("workers", [1, 2])
def test_the_watchdog_stops_a_stuck_task_and_the_others_finish(free_start_up, workers):
    start = time.monotonic()
    run = run_pool(square_or_hang, list(range(6)), workers=workers, initializer=nothing, timeout_s=1.0)
    assert time.monotonic() - start < 6
    assert run.failed == [(STUCK_TASK, "stopped after 1 s without finishing")]
    assert sorted(run.results) == [n * n for n in range(6) if n != STUCK_TASK] and not run.unfinished


def test_first_ctrl_c_stops_at_once_keeps_results_and_kills_the_workers(free_start_up, tmp_path):
    start = time.monotonic()
    # one worker sticks on task 2; the third result through the other is a Ctrl-C
    run = run_pool(square_or_hang, list(range(40)), workers=2, initializer=note_pid, initargs=(str(tmp_path),),
                   timeout_s=600, on_result=InterruptedAt(3).update)
    assert time.monotonic() - start < 5 + SHUTDOWN_GRACE_S
    assert run.interrupted and STUCK_TASK in run.unfinished
    assert len(run.results) >= 3 and set(run.results) <= {n * n for n in range(40)}
    assert len(run.results) + len(run.unfinished) == 40
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert pids and not any(alive(pid) for pid in pids)


def test_a_task_that_finishes_while_shutting_down_is_kept(free_start_up):
    # task 1 runs here, then both workers start; task 4 ends after 0.4 s and its result is a
    # Ctrl-C; task 8, on the other worker, ends 0.4 s later
    run = run_pool(sleep_then_square, [1, 8, 4, 2, 3], workers=2, initializer=nothing,
                   on_result=InterruptedAt(2).update)
    assert sorted(run.results) == [1, 16, 64] and run.unfinished == [2, 3]
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


def process_id(_: int) -> int:
    return os.getpid()


def test_work_shorter_than_the_start_up_stays_in_this_process():
    run = run_pool(process_id, list(range(6)), workers=2, initializer=nothing)
    assert run.results == [os.getpid()] * 6


def test_work_that_pays_goes_to_the_workers(free_start_up):
    run = run_pool(process_id, list(range(6)), workers=2, initializer=nothing)
    assert run.results[0] == os.getpid() and os.getpid() not in run.results[1:]


def test_with_a_watchdog_nothing_runs_here_even_for_short_work():
    run = run_pool(process_id, list(range(6)), workers=2, initializer=nothing, timeout_s=60)
    # both workers start at once; which of them takes these instant tasks is a race
    assert len(run.results) == 6 and not run.failed
    assert os.getpid() not in run.results and 1 <= len(set(run.results)) <= 2


def nap_init() -> None:
    """Worker initializer that takes a known time."""
    time.sleep(NAP_INIT_S)


NAP_INIT_S = 0.2


def nap_then_span(_: int) -> tuple[int, float, float]:
    """This process's id and when (system-wide monotonic clock) a 0.3 s task started and ended."""
    started = time.monotonic()
    time.sleep(0.3)
    return os.getpid(), started, time.monotonic()


def test_with_a_watchdog_the_workers_start_at_once_and_share_the_tasks():
    run = run_pool(nap_then_span, list(range(4)), workers=2, initializer=nap_init, timeout_s=60)
    pids = {pid for pid, _, _ in run.results}
    assert os.getpid() not in pids and not run.failed
    assert len(pids) == 2 and all(sum(p == pid for p, _, _ in run.results) == 2 for pid in pids)
    # the two workers' first tasks ran side by side: the second did not wait for the first result
    first_of = {pid: min((span for p, *span in run.results if p == pid)) for pid in pids}
    (start_a, end_a), (start_b, end_b) = first_of.values()
    assert start_b < end_a and start_a < end_b


def test_a_watchdog_starts_no_more_workers_than_tasks(tmp_path):
    run = run_pool(square, [3], workers=2, initializer=note_pid, initargs=(str(tmp_path),), timeout_s=60)
    assert run.results == [9] and len(list(tmp_path.iterdir())) == 1


def test_startup_seconds_times_workers_that_initialise_then_ends_them(tmp_path):
    started = time.monotonic()
    seconds = startup_seconds(square, note_pid, (str(tmp_path),), workers=2)
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert 0 < seconds <= time.monotonic() - started and len(pids) == 2
    assert not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("rest_startups, workers, pays", [
    (7 / 3, 2, True),    # S + 7/3 S / 2 < 7/3 S
    (2.0, 2, False),     # S + 2 S / 2 = 2 S: no gain
    (4 / 3, 4, False),   # S + S / 3 = 4/3 S
    (1.5, 4, True),      # S + 1.5 S / 4 < 1.5 S
    (100.0, 1, False),   # one worker is this process
])
def test_break_even(rest_startups, workers, pays):
    assert pool_pays(rest_startups * pool.POOL_STARTUP_S, workers) is pays


TORCH_BEFORE_INIT: bool | None = None
"""Whether torch was imported in this worker before its initializer ran (:func:`note_torch_then_init`)."""


def note_torch_then_init(spec: EvaluatorSpec) -> None:
    """Worker initializer: note whether the fork server gave this worker torch, then build the evaluator."""
    global TORCH_BEFORE_INIT
    TORCH_BEFORE_INIT = "torch" in sys.modules
    init_worker(spec)


def evaluate_noting_torch(task) -> tuple[TaskOutcome, bool | None, bool]:
    """A task: the evaluation, whether torch was there before the initializer, and whether it is now."""
    return evaluate_task(task), TORCH_BEFORE_INIT, "torch" in sys.modules


WATCHED_EVAL = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_eval_pool import evaluate_noting_torch, note_torch_then_init
    from livegesture.evaluate.per_sample import EvaluatorSpec, evaluate_samples, plan_tasks
    from livegesture.evaluate.pool import run_pool
    from livegesture.evaluate.recordings import find_recordings

    inventory = find_recordings(Path({recording!r}))
    spec = EvaluatorSpec(Path({model!r}), {backend!r})
    watched = evaluate_samples(inventory, spec, workers=2, timeout_s=60)  # as eval runs by default
    torch_here = "torch" in sys.modules
    run = run_pool(evaluate_noting_torch, plan_tasks(inventory, 2), workers=2, initializer=note_torch_then_init,
                   initargs=(spec,), timeout_s=60, preload=spec.worker_modules)
    alone = evaluate_samples(inventory, spec, workers=1)  # in this process: no watchdog
    print(json.dumps({{"torch here": torch_here, "torch in workers": sorted({{r[1:] for r in run.results}}),
                      "watched": [r.to_dict() for r in watched.results], "alone": [r.to_dict() for r in alone.results]}}))
""")


@pytest.mark.parametrize("backend", ["fast", "fast-sparse"])
def test_a_watched_eval_imports_torch_only_in_workers_that_need_it_and_equals_the_run_here(tmp_path, backend):
    """In a fresh process (its own fork server): with the watchdog, this process builds no backend, so
    imports no torch; the fork server preloads torch for ``fast`` only, and ``fast-sparse`` workers never
    import it; the results are those of the run in this process."""
    recording, settings = write_hand_stream(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    script = WATCHED_EVAL.format(tests=str(Path(__file__).parent), recording=str(recording), model=settings.model,
                                 backend=backend)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    assert report["torch here"] is False
    assert report["torch in workers"] == [[backend == "fast"] * 2]
    assert report["watched"] == report["alone"] and len(report["alone"]) == len(HAND_SEGMENTS)
