"""The live camera source, with only the physically absent USB device faked.

The fake camera has dv's method names and returns real ``dv.EventStore`` batches;
``dv.io.camera.discover``/``open`` are replaced by a fake USB bus holding it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import dv_processing as dv
import numpy as np
import pytest

from livegesture.events import make_events
from livegesture.sources import open_source
from livegesture.sources.aedat4 import to_event_store
from livegesture.sources.camera import (
    NO_CAMERA_MESSAGE,
    CameraNotFoundError,
    CameraSource,
)

SERIAL = "00000042"
TIMEOUT_S = 3.0
FAST_RECONNECT_S = 0.01


def batch(t0: int, n: int = 5) -> np.ndarray:
    t = t0 + np.arange(n) * 10
    return make_events(t, np.arange(n) % 128, (np.arange(n) * 7) % 128, np.arange(n) % 2)


@dataclass
class FakeCamera:
    """A connected camera: hands out its queued batches as real EventStores."""

    batches: list[np.ndarray]
    running: bool = True
    error: str | None = None
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def getNextEventBatch(self):  # noqa: N802 (dv's name)
        with self.lock:
            if self.error:
                raise RuntimeError(f"/project/include/dv-processing/io/camera/usb_device.hpp(12): read()\n{self.error}\nStacktrace:\n 0# x")
            if self.served == len(self.batches):
                return None
            self.served += 1
            return to_event_store(self.batches[self.served - 1])

    def isRunning(self) -> bool:  # noqa: N802
        return self.running

    def getEventResolution(self) -> tuple[int, int]:  # noqa: N802
        return (128, 128)

    def getCameraName(self) -> str:  # noqa: N802
        return f"DVS128_{SERIAL}"


class FakeBus:
    """What ``discover`` finds and ``open`` opens; ``plug``/``unplug`` change it."""

    def __init__(self) -> None:
        self.cameras: dict[str, FakeCamera] = {}
        self.opened = 0

    def plug(self, camera: FakeCamera, serial: str = SERIAL) -> None:
        self.cameras[serial] = camera

    def unplug(self, serial: str = SERIAL) -> None:
        self.cameras.pop(serial).running = False

    def discover(self):
        return [SimpleNamespace(serialNumber=s, cameraModel="DVS128") for s in list(self.cameras)]

    def open(self, descriptor):
        self.opened += 1
        return self.cameras[descriptor.serialNumber]


@pytest.fixture
def bus(monkeypatch) -> FakeBus:
    fake = FakeBus()
    monkeypatch.setattr(dv.io.camera, "discover", fake.discover)
    monkeypatch.setattr(dv.io.camera, "open", fake.open)
    return fake


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def take(source: CameraSource, n: int) -> list[np.ndarray]:
    """The next ``n`` batches, read on a helper thread so a failure cannot hang the test."""
    out: queue.Queue = queue.Queue()

    def consume() -> None:
        for i, events in enumerate(source, 1):
            out.put(events)
            if i == n:
                return

    threading.Thread(target=consume, daemon=True).start()
    return [out.get(timeout=TIMEOUT_S) for _ in range(n)]


def test_real_discover_without_a_camera_raises_plainly():
    if dv.io.camera.discover():
        pytest.skip("a camera is attached")
    with pytest.raises(CameraNotFoundError) as info:
        open_source("camera")
    assert str(info.value) == NO_CAMERA_MESSAGE


def test_no_camera_on_the_bus(bus):
    with pytest.raises(CameraNotFoundError, match="^no camera found: plug in a DVS128.*udev rule for vendor 152a$"):
        CameraSource()
    assert bus.opened == 0


def test_wrong_serial_lists_the_connected_cameras(bus):
    bus.plug(FakeCamera([]), serial="111")
    with pytest.raises(CameraNotFoundError, match=r"no camera with serial number 999 found; connected: 111 \(DVS128\)"):
        CameraSource(serial="999")


def test_events_flow_in_order_and_unchanged(bus):
    sent = [batch(0), batch(1000, 7), batch(2000, 1)]
    bus.plug(FakeCamera(sent))
    with CameraSource(serial=SERIAL) as source:
        assert source.live and source.sensor_size == (128, 128) and source.name == f"DVS128_{SERIAL}"
        assert source.status == "connected"
        received = take(source, 3)
    assert all(np.array_equal(a, b) for a, b in zip(received, sent))
    assert source.dropped_batches == 0 and source.status == "closed"


def test_slow_consumer_loses_the_oldest_batches_and_counts_them(bus):
    sent = [batch(i * 1000, n=i + 1) for i in range(6)]
    camera = FakeCamera(sent)
    bus.plug(camera)
    source = CameraSource(queue_batches=2)
    wait_for(lambda: source.dropped_batches == 4, "the queue to overflow")
    assert source.dropped_events == 1 + 2 + 3 + 4
    received = take(source, 2)
    assert all(np.array_equal(a, b) for a, b in zip(received, sent[4:]))
    source.close()


@pytest.mark.parametrize("unplug", ["isRunning false", "read raises"])
def test_unplug_reports_and_reconnects_to_the_same_serial(bus, unplug):
    first = FakeCamera([batch(0)])
    bus.plug(first)
    bus.plug(FakeCamera([batch(0)]), serial="other")  # a second camera must not be picked on reconnect
    source = CameraSource(serial=SERIAL, reconnect_interval_s=FAST_RECONNECT_S)
    assert np.array_equal(take(source, 1)[0], batch(0))

    if unplug == "isRunning false":
        bus.unplug()
        reason = "camera stopped (unplugged?)"
    else:
        first.error = "USB transfer failed: LIBUSB_ERROR_NO_DEVICE"
        bus.cameras.pop(SERIAL)
        reason = "USB transfer failed: LIBUSB_ERROR_NO_DEVICE"
    seen: list[str] = []
    wait_for(lambda: seen.append(source.status) or seen[-1].startswith("disconnected"), "the disconnect")
    assert seen[-1] == f"disconnected: {reason}"
    opened = bus.opened
    time.sleep(10 * FAST_RECONNECT_S)
    assert source.status in (f"disconnected: {reason}", "reconnecting") and bus.opened == opened

    bus.plug(FakeCamera([batch(5000), batch(6000)]))
    wait_for(lambda: source.status == "connected", "the reconnect")
    assert [b["t"][0] for b in take(source, 2)] == [5000, 6000]
    source.close()


def test_close_stops_the_thread_and_ends_iteration_promptly(bus):
    bus.plug(FakeCamera([]))
    source = CameraSource()
    ended = threading.Event()

    def consume() -> None:
        for _ in source:
            pass
        ended.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.02)
    start = time.monotonic()
    source.close()
    assert time.monotonic() - start < 0.2
    assert not source._thread.is_alive()
    assert ended.wait(0.5)
    source.close()  # idempotent
    assert source.status == "closed"
