"""The desk <-> CRI host protocol, version :data:`PROTOCOL_VERSION`: messages, their checks, packed frames.

Transport: ZeroMQ (pyzmq) over TCP, the desk's DEALER socket to the server's ROUTER socket; the
desk authenticates with ZeroMQ's PLAIN mechanism (user :data:`TOKEN_USER`, password the shared
token), checked by the server's ZAP handler before any message is read. PLAIN sends the token
in clear: the server listens on loopback by default and a desk reaches it through an ``ssh -L``
tunnel, which encrypts it.

Every message is one or two ZeroMQ frames: a JSON header (an object with ``v`` =
:data:`PROTOCOL_VERSION` and ``type``), and for ``frames`` the binarized inputs, each packed 8
pixels to a byte (``numpy.packbits``, C order: 993 bytes for ``2 x 63 x 63``), one after the other.

desk -> server: ``hello`` {settings, input_shape, num_outputs}; ``frames`` {session, seq,
frames: [[index, t_first_us, t_us], ...]} + bits: frames ``seq .. seq + n - 1``, 1 to
:data:`MAX_FRAMES_PER_MESSAGE` of them (the desk sends several in one message when it holds
several back: one message, one wake-up of each side's ZeroMQ I/O thread and one header for them
all); ``reset`` {session, settings} (fresh window, new schedule settings); ``bye``.

server -> desk: ``welcome`` {session, backend, model, input_shape, num_outputs, class_names,
window}; ``stepped`` {session, seq, count[, decisions, counters, step_ms, frame_ms, median_frame_ms]}
acknowledging frames ``seq .. seq + count - 1``, in order (the decisions they completed);
``error`` {message, fatal, session?}. A fatal error ends the session (the desk closes its
socket); ``no-session`` (the server does not know the session: it restarted) asks for a hello.

JSON rather than a binary encoding for the headers: a few hundred bytes per message, the
standard library's parser, and a malformed header is one clear ``json`` error.

Version 2 (this one) replaced version 1's one-frame ``frame`` message by ``frames``.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livegesture.events import LivegestureError
from livegesture.integrate import Frame
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.engine import ENGINE_SETTINGS
from livegesture.pipeline.settings import PipelineSettings, SettingsError

PROTOCOL_VERSION = 2
DEFAULT_PORT = 5605
DEFAULT_HOST = "127.0.0.1"
TOKEN_USER = b"livegesture"
MAX_MESSAGE_BYTES = 64 * 1024
"""Largest message the server reads; a larger one is an error that ends the session."""
TRANSPORT_MAX_BYTES = 1024 * 1024
"""ZeroMQ's own limit (``MAXMSGSIZE``): a peer sending more is disconnected by ZeroMQ itself."""
MAX_FRAMES_PER_MESSAGE = 32
"""Frames in one ``frames`` message at most (32 packed 2 x 63 x 63 frames: 31,776 bytes)."""
NO_SESSION = "no-session"

HELLO, WELCOME, FRAMES, STEPPED, RESET, BYE, ERROR = "hello", "welcome", "frames", "stepped", "reset", "bye", "error"
CLIENT_TYPES = (HELLO, FRAMES, RESET, BYE)


class ProtocolError(LivegestureError, ValueError):
    """A message that breaks the protocol; the message says how."""


class RemoteError(LivegestureError, RuntimeError):
    """A server that cannot start, or a desk that cannot reach it (the message says which and why)."""


DEFAULT_TOKEN_FILE = Path("~/.config/livegesture/remote.token")
TOKEN_FILE_ENV = "LIVEGESTURE_TOKEN_FILE"
"""Environment variable naming the token file (both sides; ``serve --token-file`` too)."""
TOKEN_BYTES = 32


def default_token_file() -> Path:
    """:data:`TOKEN_FILE_ENV`, else ``~/.config/livegesture/remote.token``."""
    return Path(os.environ.get(TOKEN_FILE_ENV) or DEFAULT_TOKEN_FILE).expanduser()


def read_token(path: Path, *, create: bool = False) -> str:
    """The shared token in ``path``; with ``create``, a new random one is written first (mode 0600)
    when the file does not exist. :class:`RemoteError` naming the file otherwise."""
    try:
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as f:
                f.write(secrets.token_urlsafe(TOKEN_BYTES) + "\n")
        token = path.read_text().strip()
    except OSError as err:
        raise RemoteError(f"{path}: cannot read the token file ({err.strerror or err}); `livegesture serve` "
                         "writes one on the CRI host; copy it to the desk") from None
    if not token:
        raise RemoteError(f"{path}: the token file is empty")
    return token


def encode(header: dict[str, Any], payload: bytes | None = None) -> list[bytes]:
    """The ZeroMQ frames of a message."""
    head = json.dumps({"v": PROTOCOL_VERSION, **header}, separators=(",", ":")).encode()
    return [head] if payload is None else [head, payload]


def decode(parts: Sequence[bytes], types: Sequence[str]) -> tuple[dict[str, Any], bytes | None]:
    """(header, payload) of a received message; :class:`ProtocolError` unless it is well formed
    and of one of ``types``."""
    size = sum(len(p) for p in parts)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size:,} bytes exceeds the limit of {MAX_MESSAGE_BYTES:,}")
    if not 1 <= len(parts) <= 2:
        raise ProtocolError(f"a message has 1 or 2 parts, got {len(parts)}")
    try:
        header = json.loads(parts[0])
    except (UnicodeDecodeError, ValueError) as err:
        raise ProtocolError(f"header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    if header.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {header.get('v')!r}, this side speaks {PROTOCOL_VERSION}: "
                            "install the same livegesture version on the desk and the CRI host")
    if header.get("type") not in types:
        raise ProtocolError(f"unexpected message type {header.get('type')!r} (expected {', '.join(types)})")
    return header, parts[1] if len(parts) == 2 else None


def require(header: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """``header[name]`` checked to be of ``kind`` (a bool is not an int); :class:`ProtocolError` otherwise."""
    value = header.get(name)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ProtocolError(f"{header.get('type')}: field {name!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def packed_size(shape: Sequence[int]) -> int:
    return math.ceil(int(np.prod(shape)) / 8)


def pack_frame(data: np.ndarray) -> bytes:
    """A binarized frame as bits (non-zero = 1)."""
    return np.packbits(np.asarray(data).reshape(-1) != 0).tobytes()


def frame_fields(frame: Frame) -> list[int]:
    """What a ``frames`` header says of ``frame``: [index, t_first_us, t_us]."""
    return [frame.index, frame.t_first_us, frame.t_last_us]


def unpack_frames(header: dict[str, Any], payload: bytes | None, shape: Sequence[int]) -> list[Frame]:
    """The frames of a ``frames`` message, in order (their data uint8 0/1 views of one unpacked
    array); :class:`ProtocolError` for too many frames, a bad field or a payload of the wrong size."""
    fields = require(header, "frames", list)
    if not 1 <= len(fields) <= MAX_FRAMES_PER_MESSAGE:
        raise ProtocolError(f"frames: 1 to {MAX_FRAMES_PER_MESSAGE} frames in a message, got {len(fields)}")
    if not all(isinstance(f, list) and len(f) == 3 and all(type(v) is int for v in f) for f in fields):
        raise ProtocolError("frames: each frame must be [index, t_first_us, t_us], integers")
    size, pixels = packed_size(shape), int(np.prod(shape))
    expected = len(fields) * size
    if payload is None or len(payload) != expected:
        raise ProtocolError(f"frames: {expected} bytes of packed bits expected for {len(fields)} frame(s) of shape "
                            f"{tuple(shape)}, got {0 if payload is None else len(payload)}")
    packed = np.frombuffer(payload, dtype=np.uint8).reshape(len(fields), size)
    data = np.unpackbits(packed, axis=1, count=pixels).reshape(len(fields), *shape)
    return [Frame(index, data[k], t_first_us, t_us) for k, (index, t_first_us, t_us) in enumerate(fields)]


def schedule_settings(settings: PipelineSettings) -> dict[str, Any]:
    """The settings the server's engine needs (schedule and running prediction)."""
    return {name: getattr(settings, name) for name in ENGINE_SETTINGS}


def settings_from_wire(base: PipelineSettings, values: object) -> PipelineSettings:
    """``base`` with the desk's schedule settings; :class:`ProtocolError` naming a bad one."""
    if not isinstance(values, dict) or not set(values) <= set(ENGINE_SETTINGS):
        raise ProtocolError(f"settings must be an object with only the schedule settings ({', '.join(ENGINE_SETTINGS)})")
    try:
        return base.replace(**values)
    except SettingsError as err:
        raise ProtocolError(str(err)) from None


def decision_to_wire(decision: Decision) -> dict[str, Any]:
    return {"label": decision.label, "confidence": decision.confidence, "scores": decision.scores.tolist(),
            "counts": decision.counts.tolist(), "t_us": decision.t_us, "frame_index": decision.frame_index,
            "quiet": decision.quiet, "window": decision.window}


def decision_from_wire(values: dict[str, Any]) -> Decision:
    return Decision(values["label"], float(values["confidence"]), np.asarray(values["scores"], dtype=float),
                    np.asarray(values["counts"], dtype=np.int64), int(values["t_us"]), int(values["frame_index"]),
                    bool(values["quiet"]), bool(values["window"]))
