"""A process pool that keeps what finished, with a watchdog per task.

Each worker runs ``initializer(*initargs)`` once (load the model, build the backend) and
then one task at a time; results come back as they finish. A task that runs longer than
``timeout_s`` (a reader stuck in native code, which nothing inside the process can
interrupt) has its worker killed and replaced: the task is reported as failed with the
reason, the others go on; so is a task whose worker died (killed, out of memory).

Ctrl-C, or SIGTERM (which the command line turns into the same ``KeyboardInterrupt``),
stops the run at once: no task is handed out any more, the running ones get
``SHUTDOWN_GRACE_S`` to send their result (kept), then every worker is killed; the finished
results are returned with the tasks that did not finish. Workers ignore SIGINT so that only
this process decides, and they die with it even when it is killed outright (Linux
``PR_SET_PDEATHSIG``; elsewhere they end when their pipe closes). They are forked from a
*fork server*, a fresh process that imports the task's module and the modules the caller
names (``preload``: what the initializer imports, e.g. torch for the ``fast`` backend) once
(where the platform has one; else each is spawned, importing them again): a fork of this
process itself could deadlock once torch's thread pool or any other thread has run. Those
imports are most of a pool's start-up; :func:`start_fork_server` begins them early, so that
they overlap what this process does before its first task (``livegesture eval`` calls it
right after reading its options).

The pool is used only where it pays. Without a watchdog (``timeout_s`` None) the first tasks
run in this process, timed, and the rest go to the workers once that pays: ``w`` workers finish
the rest sooner than this one only if ``T > S * w / (w - 1)``, where ``T`` is the time the rest
would take here (the time per task so far) and ``S`` the pool's start-up (:data:`POOL_STARTUP_S`:
a fork server started from scratch, each worker importing the task's modules and loading its
model): then ``S + T / w < T`` (:func:`pool_pays`); everything runs here when it never does.
With a watchdog nothing runs here (a task stuck in native code holding the GIL answers no
signal and no other thread: only killing its process stops it, and this one must keep the
others' results), so the choice is between one worker and several, all forked from the same
fork server: once it runs, one more worker costs its fork and its initializer (0.02-0.04 s for
the shipped model on the development machine, :func:`startup_seconds`, against 1.6-2.6 s for
the fork server's own start, mostly importing torch), spent on a core of its own while the
others work, which any second task repays. So ``min(workers, tasks)`` workers start at once
(``benchmarks/bench_eval.py``: 1.2-1.5x the throughput of starting one and adding the others
once the first task's time said they pay, which left a core idle for that first task). The wait
for the fork server is the watchdog's price, which an early :func:`start_fork_server` overlaps
with this process's own start.

Written by hand because ``concurrent.futures`` and ``multiprocessing.Pool`` can neither stop
one task nor replace its worker: their only answer to a stuck task is to wait for it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from livegesture.events import LivegestureError

Task = TypeVar("Task")
Result = TypeVar("Result")

SHUTDOWN_GRACE_S = 1.0
"""After Ctrl-C / SIGTERM, how long running tasks may still deliver their result."""
PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies."""
POOL_STARTUP_S = 3.0
"""Seconds until a pool of 2 workers that load the shipped model is ready (the rule without a
watchdog, whose workers may need a fork server started from scratch), as
``benchmarks/bench_eval.py`` measured it when the fork server was not yet running: 2.9 s and
5.5 s on the shared 2-core development machine (load average 5-7), with the ``concurrent.futures``
pool this module's workers replaced, which start the same way (fork server, model load). The lower figure:
misjudging it low starts a pool that barely pays, misjudging it high keeps work in one process
that a pool would have done faster."""


def pool_pays(rest_seconds: float, workers: int) -> bool:
    """Whether ``workers`` processes finish work that takes ``rest_seconds`` in this one sooner than
    this one: ``POOL_STARTUP_S + rest_seconds / workers < rest_seconds``."""
    return workers > 1 and rest_seconds > POOL_STARTUP_S * workers / (workers - 1)


@dataclass(frozen=True)
class PoolRun(Generic[Task, Result]):
    """Finished results (in completion order), the tasks stopped by the watchdog or lost with
    their worker (with the reason), and the tasks not run (interrupted)."""

    results: list[Result]
    unfinished: list[Task]
    failed: list[tuple[Task, str]]

    @property
    def interrupted(self) -> bool:
        return bool(self.unfinished)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a no-op elsewhere).

    The parent is the fork server, which stops once every holder of its "alive" pipe is gone;
    CPython hands each child a copy of that pipe (``multiprocessing.forkserver``,
    ``_serve_one``), so this worker closes its own: then the fork server, and with it the
    workers, end when the main process does, even when it is killed outright.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    server = forkserver._forkserver
    if getattr(server, "_forkserver_alive_fd", None) is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None


def _worker_main(conn: Connection, function: Callable[[Any], Any], initializer: Callable[..., None],
                 initargs: tuple) -> None:
    """A worker: initialise and say so with ``(None, ok, error)``, then answer each
    ``(number, task)`` with ``(number, ok, result or error)``."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        initializer(*initargs)
    except BaseException as err:  # the parent raises it: the run cannot go on
        conn.send((None, False, err))
        return
    conn.send((None, True, None))
    while True:
        try:
            number, task = conn.recv()
        except EOFError:  # the parent is gone
            return
        try:
            conn.send((number, True, function(task)))
        except Exception as err:  # sent back and raised there, as concurrent.futures does
            conn.send((number, False, err))


def _context(modules: Sequence[str]) -> multiprocessing.context.BaseContext:
    """The fork server, preloading ``modules`` when it starts; ``spawn`` where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(sorted(set(modules)))
    return context


def _modules(functions: Sequence[Callable[..., object]], preload: Sequence[str]) -> list[str]:
    """What the fork server preloads: the modules of ``functions`` and ``preload``."""
    return [f.__module__ for f in functions] + list(preload)


def start_fork_server(modules: Sequence[str]) -> None:
    """Start the fork server now, importing ``modules`` in the background (it does not wait for
    them), so that its start overlaps this process's work until its first worker; a no-op where
    there is no fork server, or when one runs already (it keeps the modules it was started with:
    a worker then imports what is missing itself)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        _context(modules)
        forkserver.ensure_running()


class _Worker:
    """One worker process, its end of the pipe, whether it has initialised, and the task it runs
    (number, start time): the watchdog's clock starts with the task, not with the worker."""

    def __init__(self, context: multiprocessing.context.BaseContext, args: tuple) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, *args), daemon=True)
        self.process.start()  # returns once the fork server has forked it
        child.close()
        self.ready = False
        self.task: tuple[int, float] | None = None

    def give(self, number: int, task: object) -> None:
        self.task = (number, time.monotonic())
        try:
            self.conn.send((number, task))
        except OSError:  # it died: the main loop notices
            pass

    def started(self) -> None:
        """Read the worker's first message: raises its initializer's error, or when it died starting."""
        try:
            _, ok, error = self.conn.recv()
        except EOFError:
            self.process.join()
            raise LivegestureError(f"a worker process died while starting (exit code {self.process.exitcode})") from None
        if not ok:
            raise error
        self.ready = True

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def startup_seconds(function: Callable[..., object], initializer: Callable[..., None], initargs: tuple = (),
                    workers: int = 2) -> float:
    """Seconds from starting ``workers`` workers for ``function`` (each running ``initializer``) until
    every one has initialised (``benchmarks/bench_eval.py``): what :data:`POOL_STARTUP_S` stands for
    when the fork server is not running yet; far less once it runs (it keeps the imports): what
    starting the watchdog's workers at once costs."""
    started = time.perf_counter()
    context = _context(_modules((function, initializer), ()))
    pool = [_Worker(context, (function, initializer, initargs)) for _ in range(workers)]
    try:
        for worker in pool:
            worker.started()
        return time.perf_counter() - started
    finally:
        for worker in pool:
            worker.kill()


def run_pool(function: Callable[[Task], Result], tasks: Sequence[Task], *, workers: int,
             initializer: Callable[..., None], initargs: tuple = (),
             on_result: Callable[[Result], None] | None = None,
             timeout_s: float | None = None, preload: Sequence[str] = ()) -> PoolRun[Task, Result]:
    """Run ``function`` (a module-level function) over ``tasks`` in up to ``workers`` processes, as many
    as pay (see the module docstring), and in this process while ``timeout_s`` is None.

    ``on_result`` is called in this process with each result as it arrives (progress bars);
    ``timeout_s`` is the watchdog's limit per task (None: none); ``preload``: modules the fork
    server imports besides ``function``'s and ``initializer``'s (see :func:`start_fork_server`).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    done: dict[int, Result] = {}
    failed: dict[int, str] = {}

    def finish(number: int, result: Result) -> None:
        done[number] = result
        if on_result is not None:
            on_result(result)

    pending = deque(enumerate(tasks))
    modules = _modules((function, initializer), preload)
    try:
        if timeout_s is None and pending:
            _run_here(function, pending, workers, initializer, initargs, finish)
            if pending:  # the workers pay
                _run_processes(modules, pending, workers, (function, initializer, initargs), None, finish, failed)
        elif pending:
            _run_processes(modules, pending, workers, (function, initializer, initargs), timeout_s, finish, failed)
    except KeyboardInterrupt:
        pass  # keep what finished
    return PoolRun(list(done.values()), [task for number, task in enumerate(tasks) if number not in done
                                         and number not in failed],
                   [(tasks[number], reason) for number, reason in sorted(failed.items())])


def _run_here(function: Callable, pending: deque, workers: int, initializer: Callable[..., None], initargs: tuple,
              finish: Callable[[int, Any], None]) -> None:
    """Run tasks from ``pending`` in this process, timed, until ``workers`` processes would finish the rest sooner."""
    initializer(*initargs)
    started, count = time.perf_counter(), 0
    while pending:
        number, task = pending.popleft()
        finish(number, function(task))
        count += 1
        rest = len(pending)
        if rest and pool_pays((time.perf_counter() - started) / count * rest, min(workers, rest)):
            return


def _run_processes(modules: Sequence[str], pending: deque, workers: int, args: tuple, timeout_s: float | None,
                   finish: Callable[[int, Any], None], failed: dict[int, str]) -> None:
    """Run the ``pending`` tasks in ``min(workers, tasks)`` workers, started at once; each task
    watched for ``timeout_s``."""
    context = _context(modules)
    pool = [_Worker(context, args) for _ in range(min(workers, len(pending)))]

    def receive(worker: _Worker) -> None:
        number, ok, value = worker.conn.recv()
        if not ok:
            raise value
        worker.task = None
        finish(number, value)

    try:
        while pending or any(w.task for w in pool):
            for worker in pool:
                if worker.ready and worker.task is None and pending:
                    worker.give(*pending.popleft())
            busy = [w for w in pool if w.task]
            watched = busy + [w for w in pool if not w.ready]
            limit = (None if timeout_s is None or not busy else
                     max(0.0, min(w.task[1] for w in busy) + timeout_s - time.monotonic()))
            ready = set(wait([w.conn for w in watched] + [w.process.sentinel for w in watched], timeout=limit))
            for index, worker in enumerate(pool):
                if not worker.ready:
                    if worker.conn in ready or worker.process.sentinel in ready:
                        worker.started()
                    continue
                if worker.task is None:
                    continue
                number, started = worker.task
                if worker.conn in ready or worker.process.sentinel in ready:
                    try:
                        receive(worker)
                        continue
                    except EOFError:
                        worker.process.join()
                        reason = f"its worker process died (exit code {worker.process.exitcode})"
                elif timeout_s is not None and time.monotonic() - started >= timeout_s:
                    reason = f"stopped after {timeout_s:g} s without finishing"
                else:
                    continue
                failed[number] = reason
                worker.kill()
                pool[index] = _Worker(context, args)
    except KeyboardInterrupt:
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        busy = [w for w in pool if w.task]
        while busy and time.monotonic() < deadline:  # keep what finishes while shutting down
            for conn in wait([w.conn for w in busy], timeout=max(0.0, deadline - time.monotonic())):
                worker = next(w for w in busy if w.conn is conn)
                try:
                    receive(worker)
                except (EOFError, OSError):
                    worker.task = None
            busy = [w for w in pool if w.task]
        raise
    finally:
        for worker in pool:
            worker.kill()
