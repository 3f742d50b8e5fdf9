"""A live event stream from DV software over TCP (``tcp://HOST:PORT``): dv-processing's
``dv.io.NetworkReader``, the client of DV's network output (the ``Network TCP server`` output
module of the DV GUI, or any dv-processing program's ``dv.io.NetworkWriter``).

It behaves as the camera does (:class:`~livegesture.sources.camera.CameraSource`, whose reader
thread, bounded queue and drop policy it shares): a stream that ends (the server stopped)
becomes a status message and the source reconnects to the same address until it is closed.
"""

from __future__ import annotations

from typing import Any

from livegesture.sources.aedat4 import dv, dv_error_message
from livegesture.sources.camera import DEFAULT_QUEUE_BATCHES, DEFAULT_RECONNECT_INTERVAL_S, CameraError, CameraSource

SCHEME = "tcp://"
STREAM_ENDED_REASON = "the stream ended (server stopped?)"


def parse_address(text: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> ``(host, port)``; :class:`CameraError` for anything else."""
    host, _, port = text.removeprefix(SCHEME).rpartition(":")
    if not text.startswith(SCHEME) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CameraError(f"{text}: a DV network stream is tcp://HOST:PORT (port 1-65535)")
    return host.strip("[]"), int(port)


def _connect(host: str, port: int) -> Any:
    try:
        reader = dv.io.NetworkReader(host, port)
    except RuntimeError as err:
        raise CameraError(f"cannot connect to {SCHEME}{host}:{port}: {dv_error_message(err).split(' [')[0]}") from None
    if not reader.isEventStreamAvailable():
        raise CameraError(f"{SCHEME}{host}:{port} sends no event stream")
    return reader


class NetworkSource(CameraSource):
    """Event batches from a DV network stream at ``host``:``port``, read on a daemon thread
    (see :class:`CameraSource` for the queue, its drop policy, ``status`` and reconnection).
    Raises :class:`CameraError` when nothing serves events there."""

    stopped_reason = STREAM_ENDED_REASON

    def __init__(self, host: str, port: int, *, queue_batches: int = DEFAULT_QUEUE_BATCHES,
                 reconnect_interval_s: float = DEFAULT_RECONNECT_INTERVAL_S) -> None:
        self.host, self.port = host, port
        self.serial = f"{SCHEME}{host}:{port}"
        reader = _connect(host, port)
        self._start(reader, f"{self.serial} ({reader.getCameraName()})", self.serial, queue_batches,
                    reconnect_interval_s)

    @classmethod
    def from_address(cls, text: str) -> NetworkSource:
        """The source of ``tcp://HOST:PORT``."""
        return cls(*parse_address(text))

    def _reopen(self) -> Any:
        return _connect(self.host, self.port)
