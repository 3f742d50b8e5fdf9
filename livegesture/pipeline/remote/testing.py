"""A slow or broken link on loopback, for the tests and benchmarks of the remote pipeline.

:class:`DelayLink` relays TCP connections from its own port to a target port and delivers every
chunk ``one_way_s`` after it arrived, in each direction: a round trip of ``2 * one_way_s`` with
ordering and bandwidth kept, as ``tc netem delay`` gives (which needs the ``sch_netem`` kernel
module and a network namespace; containers often have neither). :meth:`DelayLink.cut` drops every
connection and refuses new ones until :meth:`DelayLink.restore`: a network loss.

Plain sockets and a thread per direction that sleeps until each chunk is due (``time.sleep``:
nanosecond timers, about 0.1 ms late), because an event loop's timers are not precise enough:
epoll waits in whole milliseconds, rounded up, and asyncio's relay delivered 1.5-2 ms late per
round trip on the development machine, which ``benchmarks/bench_remote.py`` would have counted
against the desk. Written by hand because it is a byte relay, not a protocol: nothing to take
from a library.

``python -m livegesture.pipeline.remote.testing TARGET_PORT ONE_WAY_MS [--realtime]`` runs one in its own
process (printing ``listening on PORT; ...``; Ctrl-C or SIGTERM stops it), so that it does not share
the interpreter lock with a client; ``--realtime`` puts it on the real-time scheduler where allowed
(root, or ``CAP_SYS_NICE``): its threads then deliver each chunk when due even on a core the desk
keeps busy, as a network does (on the 2-core development machine, under the live pipeline's load,
the ordinary scheduler can wake them late: in one run of ``benchmarks/bench_remote.py`` the 40 ms
link cost the live pipeline 43.5 ms more than the relay without delay, which would count against
the link).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import struct
import sys
import threading
import time

CHUNK_BYTES = 64 * 1024
ACCEPT_POLL_S = 0.1
"""How often the accepting thread looks whether the link is closing."""
_END = b""
"""The chunk that says the sender closed its side."""
REALTIME_PRIORITY = 10
"""``SCHED_FIFO`` priority of a relay run with ``--realtime`` (its threads inherit it)."""
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""What stops a relay run as a program."""


def _close(sock: socket.socket, *, reset: bool) -> None:
    """Close ``sock`` (waking a thread blocked reading it); ``reset``: with a reset, as a network
    loss looks to both ends."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class DelayLink:
    """A delaying TCP relay on threads: ``127.0.0.1:port`` -> ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, one_way_s: float = 0.0) -> None:
        self.target_port = target_port
        self.one_way_s = one_way_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(ACCEPT_POLL_S)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._open = True
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="delay link")
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                desk, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self._open:
                _close(desk, reset=True)
                continue
            try:
                target = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(desk, reset=True)
                continue
            desk.settimeout(None)
            for sock in (desk, target):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((desk, target))
            for source, sink in ((desk, target), (target, desk)):
                chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
                threading.Thread(target=self._read, args=(source, chunks), daemon=True).start()
                threading.Thread(target=self._deliver, args=(chunks, sink), daemon=True).start()
        self._listener.close()

    def _read(self, source: socket.socket, chunks: queue.SimpleQueue) -> None:
        """Each chunk read from ``source`` with the time it is due at the other end."""
        try:
            while data := source.recv(CHUNK_BYTES):
                chunks.put((time.monotonic() + self.one_way_s, data))
        except OSError:
            pass
        chunks.put((time.monotonic() + self.one_way_s, _END))  # after what came before it

    def _deliver(self, chunks: queue.SimpleQueue, sink: socket.socket) -> None:
        """Write each chunk to ``sink`` when due; at the end close ``sink``, which ends the other
        direction too (its reader sees the end)."""
        try:
            while True:
                due, data = chunks.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if data == _END:
                    break
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets.discard(sink)
        _close(sink, reset=False)

    def cut(self) -> None:
        """Drop every connection now and refuse new ones (a network loss)."""
        self._open = False
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock, reset=True)

    def restore(self) -> None:
        """Accept connections again."""
        self._open = True

    def close(self) -> None:
        """Drop every connection and stop accepting."""
        self._closing.set()
        self.cut()
        self._thread.join(5)


def realtime() -> str:
    """This process (and the threads it starts after) on the real-time scheduler; what it got, in words."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (AttributeError, OSError) as err:  # not Linux, or not allowed
        return f"ordinary scheduling (no real-time priority: {err})"
    return "real-time priority"


def main(argv: list[str]) -> int:
    """Relay until Ctrl-C or SIGTERM (POSIX).

    The stop signals are blocked in every thread (the link's inherit the mask) and taken by
    ``sigwait``: a signal that arrives while the main thread waits in a lock, as it would for a
    ``KeyboardInterrupt``, can be lost (CPython handles it only when the main thread next runs
    Python code, and a lock wait that was entered after the handler ran never ends): one relay in
    some hundreds did not stop, in the test suite here and once in CI.
    """
    target, one_way_ms = int(argv[0]), float(argv[1])
    scheduling = realtime() if "--realtime" in argv[2:] else "ordinary scheduling"
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    link = DelayLink(target, one_way_ms / 1e3)
    print(f"listening on {link.port}; {scheduling}", flush=True)
    signal.sigwait(STOP_SIGNALS)
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
