"""A process pool that keeps what finished.

Each worker runs ``initializer(*initargs)`` once (load the model, build the backend) and
then tasks in any order; results come back as they finish. Ctrl-C (or a
``KeyboardInterrupt`` from a callback) stops the run: the finished results are returned
with the tasks that did not finish. Workers ignore SIGINT so that only this process
decides. They are forked from a *fork server*, a fresh process that imports the task's
module once (where the platform has one; else each is spawned, importing it again): a fork
of this process itself could deadlock once torch's thread pool or any other thread has run.
With one worker everything runs in this process. A worker that dies (killed, out of memory)
ends the run like Ctrl-C, with a message: ``concurrent.futures`` notices a dead worker, where
``multiprocessing.Pool`` would wait for its task forever.

The pool is used only where it pays: the first task runs in this process and is timed; the
others go to ``w`` workers only if ``T > S * w / (w - 1)``, where ``T`` is the time the rest
would take here (the first task's time per task) and ``S`` the pool's start-up
(:data:`POOL_STARTUP_S`: each worker imports the task's modules and loads its model): then
``S + T / w < T``. Otherwise they run here too, so the pool is never slower than one process
by more than the misjudged part of one estimate.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

POOL_STARTUP_S = 3.0
"""Seconds until a pool of 2 workers that load the shipped model returns its first result, as
``benchmarks/bench_eval.py`` measures it: 2.9 s and 5.5 s on the shared 2-core development machine
(load average 5-7). The lower figure: misjudging it low starts a pool that barely pays, misjudging
it high keeps work in one process that a pool would have done faster."""


def pool_pays(rest_seconds: float, workers: int, startup_s: float | None = None) -> bool:
    """Whether ``workers`` processes finish work that takes ``rest_seconds`` here sooner than this
    process: ``startup_s`` (default :data:`POOL_STARTUP_S`) ``+ rest_seconds / workers < rest_seconds``."""
    startup_s = POOL_STARTUP_S if startup_s is None else startup_s
    return workers > 1 and rest_seconds > startup_s * workers / (workers - 1)


@dataclass(frozen=True)
class PoolRun(Generic[Task, Result]):
    """Finished results (in completion order) and the tasks that did not finish."""

    results: list[Result]
    unfinished: list[Task]

    @property
    def interrupted(self) -> bool:
        return bool(self.unfinished)


def _start_worker(initializer: Callable[..., None], initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*initargs)


def _context(*functions: Callable[..., object]) -> multiprocessing.context.BaseContext:
    """The fork server, preloading the modules of ``functions``; ``spawn`` where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(sorted({f.__module__ for f in functions}))
    return context


def startup_seconds(function: Callable[..., object], initializer: Callable[..., None], initargs: tuple = (),
                    workers: int = 2) -> float:
    """Seconds from starting a pool of ``workers`` for ``function`` (each running ``initializer``)
    to its first result: what :data:`POOL_STARTUP_S` stands for (``benchmarks/bench_eval.py``)."""
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=_context(function, initializer), initializer=_start_worker,
                             initargs=(initializer, initargs)) as executor:
        executor.submit(abs, 0).result()
        seconds = time.perf_counter() - started
    return seconds


def run_pool(function: Callable[[Task], Result], tasks: Sequence[Task], *, workers: int,
             initializer: Callable[..., None], initargs: tuple = (),
             on_result: Callable[[Result], None] | None = None) -> PoolRun[Task, Result]:
    """Run ``function`` (a module-level function) over ``tasks``, here and, where it pays (see the
    module docstring), in ``workers`` processes; ``initializer(*initargs)`` runs here first too.

    ``on_result`` is called in this process with each result as it arrives (progress bars).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    done: dict[int, Result] = {}

    def finish(number: int, result: Result) -> None:
        done[number] = result
        if on_result is not None:
            on_result(result)

    try:
        initializer(*initargs)
        started = time.perf_counter()
        for number, task in enumerate(tasks):
            finish(number, function(task))
            rest = len(tasks) - len(done)
            if rest and workers > 1 and pool_pays((time.perf_counter() - started) / len(done) * rest,
                                                  min(workers, rest)):
                break
        pending = {number: task for number, task in enumerate(tasks) if number not in done}
        if pending:
            context = _context(function, initializer)
            with ProcessPoolExecutor(min(workers, len(pending)), mp_context=context, initializer=_start_worker,
                                     initargs=(initializer, initargs)) as executor:
                numbers = {executor.submit(function, task): number for number, task in pending.items()}
                try:
                    for future in as_completed(numbers):
                        finish(numbers[future], future.result())
                finally:  # on Ctrl-C or a dead worker: drop the queued tasks, let running ones end
                    executor.shutdown(wait=True, cancel_futures=True)
    except KeyboardInterrupt:
        pass  # keep what finished
    except BrokenProcessPool as err:
        print(f"livegesture: a worker process died ({err}); {len(tasks) - len(done)} tasks not run",
              file=sys.stderr)
    return PoolRun(list(done.values()), [task for number, task in enumerate(tasks) if number not in done])
