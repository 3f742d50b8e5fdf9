"""``livegesture serve``: the CRI host's half of the remote pipeline.

One process owns the hardware (the cri backend holds the one-process lock) and the model,
loaded once. Desks connect (:mod:`~livegesture.pipeline.remote.protocol`), each gets a *session*: its
own :class:`~livegesture.pipeline.engine.PredictionEngine` (the periodic or staggered schedule
and the running prediction, with the desk's schedule settings) that steps the frames it sends,
in order, and answers every message of frames once they are stepped: with the decisions they
completed (their output counts), the backend's counters (clock cycles and HBM accesses on CRI)
and step times when they completed a window, with a bare acknowledgement otherwise (held while
more messages wait, up to :data:`ACK_BATCH` frames in one).

The hardware holds one network per core, so the cri backend serves one desk at a time (a
second is told the server is busy unless the first has been silent for :data:`SESSION_IDLE_S`,
e.g. a desk that lost its network); other backends serve up to ``max_sessions``. A message
that breaks the protocol (malformed, oversized, wrong version, wrong size of frame) gets an
error and ends that desk's session; an unauthenticated desk never gets past ZeroMQ's
handshake; a desk beyond :data:`~livegesture.pipeline.remote.protocol.TRANSPORT_MAX_BYTES` is
disconnected by ZeroMQ. Other desks are served meanwhile. Ctrl-C closes the sessions (and
the hardware) and the socket.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livegesture.backends import Network
from livegesture.events import LivegestureError
from livegesture.pipeline.engine import PredictionEngine, resolve_backend
from livegesture.pipeline.remote.protocol import (
    BYE,
    CLIENT_TYPES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ERROR,
    FRAMES,
    HELLO,
    NO_SESSION,
    RESET,
    STEPPED,
    TOKEN_USER,
    TRANSPORT_MAX_BYTES,
    WELCOME,
    ProtocolError,
    RemoteError,
    default_token_file,
    read_token,
    decision_to_wire,
    decode,
    encode,
    require,
    settings_from_wire,
    unpack_frames,
)
from livegesture.pipeline.settings import PipelineSettings

SESSION_IDLE_S = 10.0
"""A session silent this long may be taken over by another desk."""
MAX_SESSIONS = 4
"""Desks served at once by a simulator backend (the cri backend serves one)."""
WINDOW_FRAMES = 128
"""Frames a desk may have in flight (sent, not yet answered): enough for 1,000 frames/s at
100 ms round trip, so the throughput does not depend on the link's latency."""
ACK_BATCH = 16
"""Frames without a decision acknowledged in one message at most: each message costs a wake-up
of ZeroMQ's I/O thread (the server's largest overhead in a profile), and an ack is late only
while more frames wait; a decision, or no frame waiting, sends the acks at once."""
POLL_MS = 100
"""Longest wait for a message, so that a stop request is seen promptly."""
@dataclass
class Session:
    """One desk's engine."""

    id: str
    engine: PredictionEngine
    last_seen: float
    frames: int = 0
    messages: int = 0
    """``frames`` messages received: fewer than the frames when the desk sent several in one."""
    unanswered: list[int] = field(default_factory=list)
    """Consecutive ``seq`` of the frames stepped and not acknowledged yet."""


class Server:
    """The ROUTER socket and the sessions; :meth:`serve` runs until :meth:`stop` or Ctrl-C.

    ``settings`` give the backend (and the defaults of the schedule settings a desk sends);
    ``log`` receives one line per event worth telling the operator.
    """

    def __init__(self, network: Network, settings: PipelineSettings, token: str, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, model_name: str = "", class_names: tuple[str, ...] = (),
                 max_sessions: int = MAX_SESSIONS, backend_options: dict[str, Any] | None = None,
                 log: Callable[[str], None] = print) -> None:
        import zmq
        from zmq.auth.thread import ThreadAuthenticator

        self.network = network
        self.settings = settings
        self.backend = resolve_backend(settings.backend)
        self.max_sessions = 1 if self.backend == "cri" else max_sessions
        self.model_name, self.class_names = model_name, tuple(class_names)
        self._backend_options = backend_options
        self.log = log
        self.sessions: dict[bytes, Session] = {}
        self._stop = threading.Event()
        self._idle = [PredictionEngine(network, settings, backend_options=backend_options)]
        """Engines without a session: the model is loaded (onto the hardware) once, here, and an
        engine goes back here when its session ends, to be reconfigured (cleared) for the next."""
        self._zmq = zmq
        self._context = zmq.Context()
        self._auth = ThreadAuthenticator(self._context)
        self._auth.start()
        self._auth.configure_plain(domain="*", passwords={TOKEN_USER.decode(): token})
        self.socket = self._context.socket(zmq.ROUTER)
        self.socket.plain_server = True
        self.socket.setsockopt(zmq.MAXMSGSIZE, TRANSPORT_MAX_BYTES)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a desk that reconnects keeps its identity
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.port = self._bind(host, port)
        except BaseException:
            self.close()
            raise
        self.address = f"{host}:{self.port}"

    def _bind(self, host: str, port: int) -> int:
        endpoint = f"tcp://{'[' + host + ']' if ':' in host else host}"
        try:
            if port == 0:
                return self.socket.bind_to_random_port(endpoint)
            self.socket.bind(f"{endpoint}:{port}")
        except self._zmq.ZMQError as err:
            raise RemoteError(f"cannot listen on {host}:{port} ({err})") from None
        return port

    def serve(self) -> None:
        """Answer desks until :meth:`stop` (or KeyboardInterrupt, which propagates after closing)."""
        poller = self._zmq.Poller()
        poller.register(self.socket, self._zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(POLL_MS):
                    continue
                while True:
                    try:
                        parts = self.socket.recv_multipart(self._zmq.NOBLOCK)
                    except self._zmq.Again:
                        break
                    self._handle(parts[0], parts[1:])
                for identity, session in self.sessions.items():  # nothing more waiting: answer now
                    if session.unanswered:
                        self._answer(identity, session)
        finally:
            self.close()

    def stop(self) -> None:
        """Make :meth:`serve` return (from any thread)."""
        self._stop.set()

    def close(self) -> None:
        """End every session (releasing the hardware) and close the socket; idempotent."""
        if self._context.closed:
            return
        for identity in list(self.sessions):
            self._end(identity, "the server stopped")
        while self._idle:
            self._idle.pop().close()
        if not self.socket.closed:
            self.socket.close(linger=0)
        self._auth.stop()
        self._context.term()

    # -- messages ---------------------------------------------------------------------------

    def _send(self, identity: bytes, header: dict[str, Any]) -> None:
        try:
            self.socket.send_multipart([identity, *encode(header)], self._zmq.NOBLOCK)
        except self._zmq.Again:  # the desk does not read: it will time out and reconnect
            pass

    def _handle(self, identity: bytes, parts: list[bytes]) -> None:
        session = self.sessions.get(identity)
        try:
            header, payload = decode(parts, CLIENT_TYPES)
            kind = header["type"]
            if kind == HELLO:
                self._hello(identity, header)
                return
            if kind == BYE:
                self._end(identity, "the desk said bye")
                return
            if session is None or header.get("session") != session.id:
                self._send(identity, {"type": ERROR, "code": NO_SESSION, "fatal": False,
                                      "message": "unknown session (the server restarted?): say hello"})
                return
            session.last_seen = time.monotonic()
            if kind == RESET:
                session.engine.reconfigure(settings_from_wire(self.settings, header.get("settings")))
            elif kind == FRAMES:
                self._frames(identity, session, header, payload)
        except ProtocolError as err:
            self._fail(identity, f"protocol error: {err}")
        except LivegestureError as err:
            self._fail(identity, str(err))
        except Exception as err:  # a backend failure ends this desk's session, not the server
            self._fail(identity, f"{type(err).__name__}: {err}")

    def _fail(self, identity: bytes, message: str) -> None:
        self._send(identity, {"type": ERROR, "fatal": True, "message": message})
        self._end(identity, message)

    def _hello(self, identity: bytes, header: dict[str, Any]) -> None:
        settings = settings_from_wire(self.settings, header.get("settings"))
        shape = require(header, "input_shape", list)
        outputs = require(header, "num_outputs", int)
        if tuple(shape) != tuple(self.network.input_shape or ()) or outputs != self.network.num_outputs:
            raise ProtocolError(f"the desk's model takes {tuple(shape)} frames and has {outputs} outputs, the "
                                f"server's {self.network.input_shape} and {self.network.num_outputs}: use the "
                                "same architecture on both sides")
        if identity in self.sessions:
            self._end(identity, "the desk started again")
        elif len(self.sessions) >= self.max_sessions and not self._evict_idle():
            raise ProtocolError(f"the server is busy: its {self.backend} backend serves {self.max_sessions} "
                                "desk(s) at a time")
        if self._idle:
            engine = self._idle.pop()
            try:
                engine.reconfigure(settings)  # clears every membrane: a fresh window
            except BaseException:
                engine.close()  # half reconfigured: not to be reused
                raise
        else:
            engine = PredictionEngine(self.network, settings, backend_options=self._backend_options)
        session = Session(secrets.token_hex(8), engine, time.monotonic())
        self.sessions[identity] = session
        self._send(identity, {"type": WELCOME, "session": session.id, "backend": self.backend,
                              "model": self.model_name, "class_names": list(self.class_names),
                              "input_shape": list(self.network.input_shape), "num_outputs": self.network.num_outputs,
                              "window": WINDOW_FRAMES})
        self.log(f"session {session.id}: a desk connected ({len(self.sessions)} of {self.max_sessions})")

    def _evict_idle(self) -> bool:
        """End the longest-silent session if it has been silent for :data:`SESSION_IDLE_S`."""
        identity, oldest = min(self.sessions.items(), key=lambda item: item[1].last_seen)
        if time.monotonic() - oldest.last_seen < SESSION_IDLE_S:
            return False
        self._end(identity, f"silent for over {SESSION_IDLE_S:.0f} s, replaced by another desk")
        return True

    def _frames(self, identity: bytes, session: Session, header: dict[str, Any], payload: bytes | None) -> None:
        """Step a message's frames in order; answer at once if they completed a decision."""
        seq = require(header, "seq", int)
        frames = unpack_frames(header, payload, self.network.input_shape)
        if session.unanswered and seq != session.unanswered[-1] + 1:
            self._answer(identity, session)
        decisions = [decision for frame in frames for decision in session.engine.push(frame)]
        session.frames += len(frames)
        session.messages += 1
        session.unanswered.extend(range(seq, seq + len(frames)))
        if decisions or len(session.unanswered) >= ACK_BATCH:
            self._answer(identity, session, decisions)

    def _answer(self, identity: bytes, session: Session, decisions: list | None = None) -> None:
        """Acknowledge the unanswered frames in one message; with ``decisions``, those, their
        counts and the backend's figures (a frame without a decision is acknowledged only)."""
        answer: dict[str, Any] = {"type": STEPPED, "session": session.id, "seq": session.unanswered[0],
                                  "count": len(session.unanswered)}
        if decisions:
            stats = session.engine.step_stats
            answer.update(decisions=[decision_to_wire(d) for d in decisions], counters=session.engine.backend_counters,
                          step_ms=stats.mean_step_ms, frame_ms=stats.mean_frame_ms,
                          median_frame_ms=session.engine.median_frame_ms)
        session.unanswered.clear()
        self._send(identity, answer)

    def _end(self, identity: bytes, why: str) -> None:
        session = self.sessions.pop(identity, None)
        if session is not None:
            self._idle.append(session.engine)
            self.log(f"session {session.id} ended after {session.frames:,} frames in {session.messages:,} "
                     f"messages: {why}")


def serve(args: argparse.Namespace) -> int:
    """The ``serve`` subcommand: load the model, own the backend, answer desks until Ctrl-C."""
    from livegesture.model.files import load_model

    settings = PipelineSettings(backend=args.backend)
    if args.model:
        settings = settings.replace(model=str(Path(args.model).expanduser().resolve()))
    token_file = Path(args.token_file).expanduser() if args.token_file else default_token_file()
    token = read_token(token_file, create=True)
    model = load_model(settings.model)
    server = Server(model.network, settings, token, host=args.host, port=args.port,
                    model_name=Path(settings.model).name, class_names=tuple(model.info.class_names),
                    max_sessions=args.max_sessions, log=lambda line: print(f"serve: {line}", flush=True))
    try:
        print(f"serve: {server.backend} backend, model {settings.model}; listening on {server.address}; "
              f"token {token_file} (copy it to the desk); Ctrl-C stops", flush=True)
        server.serve()
    except KeyboardInterrupt:
        print("serve: stopped", file=sys.stderr)
    finally:
        server.close()
    return 0

