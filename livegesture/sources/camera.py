"""A live iniVation camera (DVS128, DAVIS, DVXplorer) through dv-processing.

A background thread reads the camera into a bounded queue; iterating the source
takes batches from that queue. An unplugged camera becomes a status message and
the thread keeps looking for the same serial number until the source is closed.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from livegesture.events import EventFormatError, LivegestureError, SensorSize, StreamValidator
from livegesture.sources.aedat4 import dv, dv_error_message, from_event_store
from livegesture.sources.base import EventSource

NO_CAMERA_MESSAGE = (
    "no camera found: plug in a DVS128 or another iniVation camera; "
    "on Linux install the udev rule for vendor 152a"
)
DEFAULT_QUEUE_BATCHES = 64
DEFAULT_RECONNECT_INTERVAL_S = 1.0
IDLE_SLEEP_S = 0.002
"""Pause of the reader thread when the camera has no new events."""
JOIN_TIMEOUT_S = 2.0
STATUS_CONNECTED = "connected"
STATUS_RECONNECTING = "reconnecting"
STATUS_CLOSED = "closed"
DISCONNECTED = "disconnected: "
UNPLUGGED_REASON = "camera stopped (unplugged?)"


class CameraError(LivegestureError, RuntimeError):
    """A camera that cannot be used; the message is meant for the user."""


class CameraNotFoundError(CameraError):
    """No (matching) camera is connected."""


def _find_descriptor(serial: str | None) -> Any:
    """The descriptor of the camera with ``serial``, or of the first camera."""
    try:
        descriptors = dv.io.camera.discover()
    except RuntimeError as err:
        raise CameraError(f"camera discovery failed: {dv_error_message(err)}") from None
    if not descriptors:
        raise CameraNotFoundError(NO_CAMERA_MESSAGE)
    if serial is None:
        return descriptors[0]
    for descriptor in descriptors:
        if descriptor.serialNumber == serial:
            return descriptor
    found = ", ".join(f"{d.serialNumber} ({d.cameraModel})" for d in descriptors)
    raise CameraNotFoundError(f"no camera with serial number {serial} found; connected: {found}")


def _open(descriptor: Any) -> Any:
    try:
        return dv.io.camera.open(descriptor)
    except (RuntimeError, IndexError) as err:
        raise CameraError(f"cannot open camera {descriptor.serialNumber}: {dv_error_message(err)}") from None


class CameraSource(EventSource):
    """Event batches from a live camera, read on a daemon thread.

    ``serial`` picks a camera by serial number; by default the first one found.
    Raises :class:`CameraNotFoundError` when there is none.

    Drop policy: the thread puts each batch into a queue of at most ``queue_batches``
    batches; when the consumer falls behind, the OLDEST queued batch is dropped and
    counted in ``dropped_batches`` and ``dropped_events``, so the consumer always
    gets the most recent events.

    ``status`` (for a GUI) is ``"connected"``, ``"disconnected: <reason>"``,
    ``"reconnecting"`` or ``"closed"``. After a disconnect the thread re-discovers the
    same serial every ``reconnect_interval_s`` seconds until it is back or the source
    is closed; meanwhile iteration simply waits. Iteration ends when ``close()`` is called.
    Timestamps are dv's, in microseconds. Events outside the sensor are
    dropped; a batch whose time goes backwards counts as a device failure (reconnect).
    """

    live = True
    stopped_reason = UNPLUGGED_REASON
    """Why the device stopped, as the status says it."""

    def __init__(self, serial: str | None = None, *, queue_batches: int = DEFAULT_QUEUE_BATCHES,
                 reconnect_interval_s: float = DEFAULT_RECONNECT_INTERVAL_S) -> None:
        descriptor = _find_descriptor(serial)
        camera = _open(descriptor)
        self.serial: str = descriptor.serialNumber
        self._start(camera, camera.getCameraName(), f"camera {self.serial}", queue_batches, reconnect_interval_s)

    def _start(self, device: Any, name: str, what: str, queue_batches: int, reconnect_interval_s: float) -> None:
        """Take the sensor size of an opened ``device`` (``what`` names it in messages) and start reading it."""
        if queue_batches < 1:
            raise ValueError(f"queue_batches must be at least 1, got {queue_batches}")
        resolution = device.getEventResolution()
        if resolution is None:
            raise CameraError(f"{what} has no event output")
        self.name = name
        self.sensor_size: SensorSize = (int(resolution[0]), int(resolution[1]))
        self.queue_batches = queue_batches
        self.reconnect_interval_s = reconnect_interval_s
        self.dropped_batches = 0
        self.dropped_events = 0
        self._queue: deque[np.ndarray] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._status = STATUS_CONNECTED
        self._thread = threading.Thread(target=self._run, args=(device,), name=what, daemon=True)
        self._thread.start()

    def _reopen(self) -> Any:
        """The same device opened again; :class:`CameraError` while it is not back."""
        return _open(_find_descriptor(self.serial))

    @property
    def status(self) -> str:
        with self._cond:
            return self._status

    def _set_status(self, status: str) -> None:
        with self._cond:
            if self._status != STATUS_CLOSED:
                self._status = status

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                batch = self._queue.popleft()
            yield batch

    def _put(self, events: np.ndarray) -> None:
        with self._cond:
            if len(self._queue) >= self.queue_batches:
                oldest = self._queue.popleft()
                self.dropped_batches += 1
                self.dropped_events += oldest.size
            self._queue.append(events)
            self._cond.notify()

    def _run(self, camera: Any) -> None:
        """Read until stopped; on any device failure drop the camera and reconnect."""
        validate = StreamValidator(self.sensor_size, self.name, out_of_range="drop")
        reason = ""
        while not self._stop.is_set():
            if camera is None:
                camera = self._reconnect(reason)
                validate = StreamValidator(self.sensor_size, self.name, out_of_range="drop")
                continue
            try:
                if not camera.isRunning():
                    raise CameraError(self.stopped_reason)
                store = camera.getNextEventBatch()
                if store is None:
                    self._stop.wait(IDLE_SLEEP_S)
                    continue
                events = validate(from_event_store(store))
            except EventFormatError as err:
                reason = err.problem
            except Exception as err:  # dv raises RuntimeError and others for USB failures: all mean disconnected
                reason = dv_error_message(err)
            else:
                if events.size:
                    self._put(events)
                continue
            camera = None
            self._set_status(DISCONNECTED + reason)

    def _reconnect(self, reason: str) -> Any:
        """After ``reconnect_interval_s``, try to reopen the same device; the device or None."""
        if self._stop.wait(self.reconnect_interval_s):
            return None
        self._set_status(STATUS_RECONNECTING)
        try:
            camera = self._reopen()
        except CameraError:
            self._set_status(DISCONNECTED + reason)
            return None
        self._set_status(STATUS_CONNECTED)
        return camera

    def close(self) -> None:
        """Stop the reader thread (promptly) and release the camera; iteration ends."""
        self._stop.set()
        with self._cond:
            self._status = STATUS_CLOSED
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
