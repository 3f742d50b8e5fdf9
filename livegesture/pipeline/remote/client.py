"""The desk's half of the remote pipeline: an engine that asks ``livegesture serve`` for decisions.

:class:`RemoteEngine` has :class:`~livegesture.pipeline.engine.PredictionEngine`'s interface,
so the live pipeline, :func:`~livegesture.pipeline.engine.decide_stream` and the streaming
evaluation run unchanged (:func:`~livegesture.pipeline.engine.make_engine` picks it when
``settings.remote`` is set). Camera, integrator and window stay at the desk; only the packed
binarized frames go to the server, which runs the schedule and the running prediction.

**Pipelined.** ``push`` hands the frame over and returns at once with the decisions answered
so far; many frames are in flight, so the frame rate does not depend on the round-trip time
(``benchmarks/bench_remote.py``). A frame for a server that keeps up goes at once, alone. The
desk holds frames back, to send them together in one message, while the frames in flight fill
the quickest round trip seen and :data:`QUEUE_BUDGET_S` of the server's work (the round trip
times the server's frame rate, from its median time per frame; at most the window the server
grants), and while it holds less than a batch (:data:`BATCH_BUDGET_S` of the server's work) and
at least as many frames queue at the server (they would wait there too); ``push`` waits only when
it holds a batch and the window is full. So the server's queue, hence the added latency, stays
within that budget and a batch; the live pipeline's frame queue upstream drops its oldest frames
instead; a lossless replay waits; and a server slower than the source gets a message per batch.
:meth:`flush` sends what is held and waits for the last answers.

**Faults.** The link is lost when ZeroMQ reports the disconnection, when no answer comes for
:data:`REPLY_TIMEOUT_S` while frames are in flight, or when the server does not know the
session (it restarted). Then a notice says so (:meth:`take_notices`: the window's banner, the
terminal), the frames in flight are counted as lost (``step_stats.frames_lost``), frames pushed
meanwhile too, and a hello goes out every :data:`RETRY_S` (ZeroMQ reconnects the TCP link);
the server's answer starts a fresh window (a new session: membranes cleared), and a notice
says that too. A wrong token, a busy server or another protocol version is a
:class:`~livegesture.pipeline.remote.protocol.RemoteError` with one line saying so.
"""

from __future__ import annotations

import math
import secrets
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

from livegesture.backends import Network
from livegesture.integrate import Frame
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.engine import StepStats
from livegesture.pipeline.remote.protocol import (
    BYE,
    ERROR,
    FRAMES,
    HELLO,
    MAX_FRAMES_PER_MESSAGE,
    NO_SESSION,
    RESET,
    STEPPED,
    TOKEN_USER,
    WELCOME,
    RemoteError,
    decision_from_wire,
    decode,
    default_token_file,
    encode,
    frame_fields,
    pack_frame,
    read_token,
    schedule_settings,
)
from livegesture.pipeline.settings import STAGGERED, PipelineSettings, split_address

CONNECT_TIMEOUT_S = 5.0
"""How long the first hello may wait for the server."""
REPLY_TIMEOUT_S = 5.0
"""Silence with frames in flight after which the link counts as lost."""
RETRY_S = 0.5
"""Interval between hellos while reconnecting."""
LINK_POLL_S = 0.02
"""Interval between tries to send a hello while there is no TCP link yet."""
QUEUE_BUDGET_S = 0.050
"""The server's work queued beyond the round trip, at most: enough that the server never idles,
also through the scheduling delays of a busy machine (20 ms cost 5-10 % of the throughput in
``bench_remote.py``), and a decision is at most this much later for it."""
BATCH_BUDGET_S = QUEUE_BUDGET_S / 2
"""The server's work in the frames the desk holds back at most (a batch, sent as one message):
a message costs both sides a wake-up of their ZeroMQ I/O thread and the server a decode and an
answer (0.1-0.35 ms in ``bench_remote.py``, cache-cold), so a batch is a fixed share of the
server's time whatever its speed (13 frames of the fast backend's 1.9 ms, where 8 frames cost it
about 3 points of throughput more); half the queue budget, so that a server that falls behind
holds a batch queued while the desk holds the next one."""
BATCH_FRAMES = 8
"""The batch while the server's time per frame is unknown."""
RECONNECT_IVL_MS, RECONNECT_IVL_MAX_MS = 100, 1000
"""ZeroMQ's TCP reconnection interval, doubling up to the maximum."""
SERVER_TYPES = (WELCOME, STEPPED, ERROR)


class RemoteEngine:
    """Frames -> the server at ``settings.remote`` -> decisions (see the module docstring)."""

    def __init__(self, network: Network, settings: PipelineSettings, *, token_file: Path | None = None) -> None:
        import zmq

        self._zmq = zmq
        self.network = network
        self._settings = settings
        self.address = settings.remote
        host, port = split_address(settings.remote)
        self.backend_name = f"remote {self.address}"
        self._token_file = token_file or default_token_file()
        token = read_token(self._token_file)
        self._context = zmq.Context()
        self._socket = sock = self._context.socket(zmq.DEALER)
        sock.routing_id = secrets.token_bytes(8)  # the same identity across reconnections
        sock.plain_username, sock.plain_password = TOKEN_USER, token.encode()
        sock.setsockopt(zmq.IMMEDIATE, 1)  # no queueing for a link that is down: a send fails instead
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        sock.connect(f"tcp://{'[' + host + ']' if ':' in host else host}:{port}")
        self._wake_in, self._wake_out = _wake_pair()
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._poller.register(self._wake_in.fileno(), zmq.POLLIN)  # a plain socket: polled and named by its fd
        self._session: str | None = None
        self._window = 1
        self._in_flight: deque[tuple[int, float]] = deque()
        """(seq, time sent) of the frames not answered yet, oldest first."""
        self._held: list[tuple[list[int], bytes]] = []
        """(header fields, packed bits) of the frames pushed and not sent yet, oldest first."""
        self._quickest: float | None = None
        """The quickest round trip of a frame seen in this session (link and one step)."""
        self._seq = 0
        self._last_progress = time.monotonic()
        self._next_hello = 0.0
        self._decisions: list[Decision] = []
        self._notices: list[str] = []
        self._counters: dict[str, int] = {}
        self._timing = (0.0, 0.0)
        self._frame_s = 0.0
        """The server's median time per frame (0 until it says)."""
        self._local = {"frames": 0, "decisions": 0, "frames_lost": 0}
        self.server_backend = ""
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    # -- PredictionEngine's interface --------------------------------------------------------

    @property
    def settings(self) -> PipelineSettings:
        return self._settings

    @property
    def instances(self) -> int:
        return 2 if self._settings.mode == STAGGERED else 1

    @property
    def step_stats(self) -> StepStats:
        counters = self._counters
        return StepStats(frames=self._local["frames"], steps=counters.get("steps", 0),
                         clears=counters.get("resets", 0), decisions=self._local["decisions"],
                         mean_step_ms=self._timing[0], mean_frame_ms=self._timing[1],
                         frames_lost=self._local["frames_lost"])

    @property
    def in_flight(self) -> int:
        """Frames sent and not answered yet."""
        return len(self._in_flight)

    @property
    def batch_frames(self) -> int:
        """The frames the desk holds back at most, for the server's median time per frame."""
        return batch_frames(self._frame_s)

    @property
    def quickest_round_trip_s(self) -> float | None:
        """The quickest round trip of this session's frames, seconds (None before an answer)."""
        return self._quickest

    @property
    def backend_counters(self) -> dict[str, int]:
        """The server's backend counters of this session (clock cycles, HBM accesses on CRI)."""
        return dict(self._counters)

    def reconfigure(self, settings: PipelineSettings) -> None:
        """New schedule / prediction settings: the server restarts the window with a clear."""
        if settings.remote != self.address:
            raise ValueError(f"the engine talks to {self.address}; make a new engine for {settings.remote!r}")
        self._settings = settings
        self.reset()

    def reset(self) -> None:
        """Clear every membrane on the server and restart the schedule (in order with the frames)."""
        if self._session is not None:
            if self._held:
                self._send_held()
            self._send({"type": RESET, "session": self._session, "settings": schedule_settings(self._settings)})

    def push(self, frame: Frame) -> list[Decision]:
        """Send ``frame``; the decisions answered since the previous call (for earlier frames)."""
        self._local["frames"] += 1
        self._service(0)
        if self._session is None:
            self._local["frames_lost"] += 1
            return self._take()
        self._held.append((frame_fields(frame), pack_frame(frame.data)))
        while self._session is not None and len(self._held) >= self.batch_frames and self._must_wait():
            self._service(self._wait_left())
        self._send_when_due()
        return self._take()

    def flush(self) -> list[Decision]:
        """Send the frames held back and wait for the answers to every frame (or for the link to
        count as lost)."""
        while self._session is not None and (self._in_flight or self._held):
            if self._held and not self._must_wait():
                self._send_held()
            else:
                self._service(self._wait_left())
        return self._take()

    @property
    def awaiting_answers(self) -> bool:
        """Frames are held back or in flight: their decisions arrive between pushes (see
        :meth:`take_answers`)."""
        return bool(self._in_flight or self._held)

    def take_answers(self, wait_s: float = 0.0) -> list[Decision]:
        """The decisions answered since the previous call (sending the frames held back if they
        are due); with none yet and frames in flight, waiting up to ``wait_s`` for the next answer
        (not for every frame: a replay's end publishes each decision as it arrives) or for
        :meth:`wake`."""
        self._service(0)
        self._send_when_due()
        if wait_s > 0 and not self._decisions and self._in_flight:
            self._service(min(wait_s, self._wait_left()))
            self._send_when_due()
        return self._take()

    def wake(self) -> None:
        """End a :meth:`take_answers` wait now (from any thread: the pipeline's worker has a frame
        to push). A wake-up while none waits ends the next wait at once, which then clears it."""
        try:
            self._wake_out.send(b"\0")
        except OSError:  # full (wake-ups are pending anyway) or closed (the engine closed)
            pass

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def close(self) -> None:
        """Say bye and close the sockets; idempotent."""
        if self._socket.closed:
            return
        if self._session is not None:
            self._send({"type": BYE, "session": self._session})
        self._socket.disable_monitor()
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        self._context.term()
        self._wake_in.close()
        self._wake_out.close()

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the link ------------------------------------------------------------------------------

    def _send(self, header: dict[str, Any], payload: bytes | None = None) -> bool:
        """Send one message now; False when there is no connection to send it on."""
        try:
            self._socket.send_multipart(encode(header, payload), self._zmq.NOBLOCK)
        except self._zmq.Again:  # IMMEDIATE: no connection to queue on
            return False
        return True

    def _send_when_due(self) -> None:
        """Send the frames held back unless the desk must wait, or unless they are fewer than
        a batch and the server has that many queued: they would wait there too."""
        if self._session is None or not self._held or self._must_wait():
            return
        batch = self.batch_frames
        if len(self._held) < batch and self._queued_at_server() >= batch:
            return
        self._send_held()

    def _send_held(self) -> None:
        """The frames held back, in one message."""
        held, self._held = self._held, []
        header = {"type": FRAMES, "session": self._session, "seq": self._seq, "frames": [f for f, _ in held]}
        if self._send(header, b"".join(bits for _, bits in held)):
            now = time.monotonic()
            if not self._in_flight:
                self._last_progress = now
            self._in_flight.extend((self._seq + k, now) for k in range(len(held)))
            self._seq += len(held)
        else:  # the frames count as lost in flight, like those sent before the loss
            self._held = held
            self._lost(f"lost the connection to {self.address} (a send found the link down)")

    def _take(self) -> list[Decision]:
        decisions, self._decisions = self._decisions, []
        self._local["decisions"] += len(decisions)
        return decisions

    def _must_wait(self) -> bool:
        """As many frames are in flight as :meth:`_frames_in_flight_at_most`."""
        return len(self._in_flight) >= self._frames_in_flight_at_most()

    def _frames_filling(self, beyond_round_trip_s: float) -> int | None:
        """The frames the server steps, at its median time per frame, in the quickest round trip
        and ``beyond_round_trip_s`` more (None while either is unknown)."""
        if self._quickest is None or self._frame_s <= 0:
            return None
        return math.ceil((self._quickest + beyond_round_trip_s) / self._frame_s)

    def _frames_in_flight_at_most(self) -> int:
        """The frames that fill the quickest round trip and :data:`QUEUE_BUDGET_S` of the server's
        work, within the server's window (the window while either is unknown)."""
        frames = self._frames_filling(QUEUE_BUDGET_S)
        return self._window if frames is None else max(1, min(self._window, frames))

    def _queued_at_server(self) -> int:
        """The frames in flight beyond those the quickest round trip holds: those queueing at the
        server (0 while it or the server's time per frame is unknown)."""
        frames = self._frames_filling(0.0)
        return 0 if frames is None else len(self._in_flight) - frames

    def _wait_left(self) -> float:
        return max(0.0, self._last_progress + REPLY_TIMEOUT_S - time.monotonic())

    def _connect(self) -> None:
        """The first hello: :class:`RemoteError` unless a server welcomes this desk in time."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while self._session is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RemoteError(f"no answer from {self.address} within {CONNECT_TIMEOUT_S:g} s: is `livegesture "
                                  "serve` running there, and the ssh tunnel open?")
            self._service(min(left, LINK_POLL_S))

    def _service(self, timeout_s: float) -> None:
        """Handle connection events and answers, waiting up to ``timeout_s`` for the first."""
        if self._session is None and time.monotonic() >= self._next_hello:
            self._hello()
        if timeout_s > 0 or self._monitor.getsockopt(self._zmq.EVENTS) & self._zmq.POLLIN:
            ready = dict(self._poller.poll(int(timeout_s * 1000)))
            if self._wake_in.fileno() in ready:
                _drain(self._wake_in)
            if self._monitor in ready:
                self._events()
        while True:
            try:
                parts = self._socket.recv_multipart(self._zmq.NOBLOCK)
            except self._zmq.Again:
                break
            self._answer(parts)
        if self._session is not None and self._in_flight and self._wait_left() == 0:
            self._lost(f"no answer from {self.address} for {REPLY_TIMEOUT_S:g} s")

    def _hello(self) -> None:
        sent = self._send({"type": HELLO, "settings": schedule_settings(self._settings),
                    "input_shape": list(self.network.input_shape), "num_outputs": self.network.num_outputs})
        self._next_hello = time.monotonic() + (RETRY_S if sent else LINK_POLL_S)

    def _events(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                event = recv_monitor_message(self._monitor, self._zmq.NOBLOCK)["event"]
            except self._zmq.Again:
                return
            if event == self._zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise RemoteError(f"{self.address} refused the token in {self._token_file}: copy the token file "
                                  "the CRI host's `livegesture serve` printed")
            if event == self._zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                raise RemoteError(f"{self.address} is not a livegesture server (ZeroMQ handshake failed)")
            if event == self._zmq.EVENT_DISCONNECTED and self._session is not None:
                self._lost(f"lost the connection to {self.address}")

    def _answer(self, parts: list[bytes]) -> None:
        header, _ = decode(parts, SERVER_TYPES)
        kind = header["type"]
        if kind == WELCOME:
            self._welcome(header)
        elif kind == ERROR:
            if header.get("code") == NO_SESSION:
                if self._session is not None:
                    self._lost(f"{self.address} does not know this desk (the server restarted?)")
                return
            raise RemoteError(f"{self.address}: {header.get('message')}")
        elif (header.get("session") == self._session and self._in_flight and header.get("seq") == self._in_flight[0][0]
              and 1 <= header.get("count", 1) <= len(self._in_flight)):
            for _ in range(header.get("count", 1)):
                _, sent = self._in_flight.popleft()
            self._last_progress = now = time.monotonic()
            self._quickest = now - sent if self._quickest is None else min(self._quickest, now - sent)
            if "decisions" in header:
                self._decisions.extend(decision_from_wire(d) for d in header["decisions"])
                self._counters = dict(header["counters"])
                self._timing = (float(header["step_ms"]), float(header["frame_ms"]))
                self._frame_s = float(header["median_frame_ms"]) / 1e3
        # anything else answers a session or frame already given up: ignored

    def _welcome(self, header: dict[str, Any]) -> None:
        reconnected = self._local["frames"] > 0
        self._session = str(header.get("session"))
        self._window = max(1, int(header.get("window", 1)))
        self._quickest = None
        self.server_backend = str(header.get("backend", ""))
        self._last_progress = time.monotonic()
        if reconnected:
            self._notices.append(f"reconnected to {self.address} ({self.server_backend} backend): a fresh window, "
                                 "membranes cleared")

    def _lost(self, reason: str) -> None:
        lost = len(self._in_flight) + len(self._held)
        self._local["frames_lost"] += lost
        self._in_flight.clear()
        self._held.clear()
        self._session = None
        self._next_hello = 0.0
        self._notices.append(f"{reason}; {lost} frame{'s' if lost != 1 else ''} in flight lost; reconnecting")


def batch_frames(frame_s: float) -> int:
    """The frames in :data:`BATCH_BUDGET_S` of a server taking ``frame_s`` a frame, 1 to the
    protocol's most (:data:`BATCH_FRAMES` while ``frame_s`` is unknown: 0)."""
    if frame_s <= 0:
        return BATCH_FRAMES
    return max(1, min(MAX_FRAMES_PER_MESSAGE, int(BATCH_BUDGET_S / frame_s)))


def _wake_pair() -> tuple[socket.socket, socket.socket]:
    """(read end, write end) of a local socket pair, both non-blocking: what :meth:`RemoteEngine.wake`
    writes ends the poll of the read end (a socket, not a pipe: ZeroMQ polls only sockets on Windows)."""
    pair = socket.socketpair()
    for end in pair:
        end.setblocking(False)
    return pair


def _drain(sock: socket.socket) -> None:
    """Read whatever waits on ``sock`` (the wake-ups seen)."""
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass
