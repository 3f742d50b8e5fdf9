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
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


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


def run_pool(function: Callable[[Task], Result], tasks: Sequence[Task], *, workers: int,
             initializer: Callable[..., None], initargs: tuple = (),
             on_result: Callable[[Result], None] | None = None) -> PoolRun[Task, Result]:
    """Run ``function`` (a module-level function) over ``tasks`` in ``workers`` processes.

    ``on_result`` is called in this process with each result as it arrives (progress bars).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    done: dict[int, Result] = {}
    try:
        if workers == 1 or len(tasks) <= 1:
            initializer(*initargs)
            for number, task in enumerate(tasks):
                done[number] = function(task)
                if on_result is not None:
                    on_result(done[number])
        else:
            context = _context(function, initializer)
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context, initializer=_start_worker,
                                     initargs=(initializer, initargs)) as executor:
                numbers = {executor.submit(function, task): number for number, task in enumerate(tasks)}
                try:
                    for future in as_completed(numbers):
                        done[numbers[future]] = future.result()
                        if on_result is not None:
                            on_result(done[numbers[future]])
                finally:  # on Ctrl-C or a dead worker: drop the queued tasks, let running ones end
                    executor.shutdown(wait=True, cancel_futures=True)
    except KeyboardInterrupt:
        pass  # keep what finished
    except BrokenProcessPool as err:
        print(f"livegesture: a worker process died ({err}); {len(tasks) - len(done)} tasks not run",
              file=sys.stderr)
    return PoolRun(list(done.values()), [task for number, task in enumerate(tasks) if number not in done])
