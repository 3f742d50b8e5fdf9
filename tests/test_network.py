"""A DV network stream as a source: a dv-processing NetworkWriter on 127.0.0.1 feeds it (bounded:
a timer closes the source if events stop coming)."""

from __future__ import annotations

import socket
import threading

import dv_processing as dv
import numpy as np
import pytest

from livegesture.cli import main
from livegesture.events import make_events
from livegesture.sources import open_source
from livegesture.sources.aedat4 import to_event_store
from livegesture.sources.camera import CameraError
from livegesture.sources.network import NetworkSource, parse_address

SIZE = (320, 240)
DEADLINE_S = 10.0


def wait_for_no_clients(writer) -> None:
    """dv's writer, destroyed while a client is connected, waits for it forever: let the server
    see the client go first (bounded)."""
    for _ in range(500):
        if not writer.getClientCount():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the client is still connected")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("text, expected", [("tcp://127.0.0.1:7777", ("127.0.0.1", 7777)),
                                            ("tcp://dv-host:4040", ("dv-host", 4040))])
def test_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["tcp://127.0.0.1", "tcp://:80", "tcp://host:0", "tcp://host:http"])
def test_bad_addresses_are_refused(text):
    with pytest.raises(CameraError, match="tcp://HOST:PORT"):
        parse_address(text)


def test_nothing_listening_is_a_one_line_error(capsys):
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(CameraError, match=f"cannot connect to {address}: connect: Connection refused"):
        open_source(address)
    assert main(["run", address, "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Connection refused" in err and "Traceback" not in err


@pytest.mark.timeout(60, method="thread")  # dv's C++ may block holding the GIL, out of reach of a signal
def test_events_written_by_a_network_writer_arrive_in_order():
    port = free_port()
    writer = dv.io.NetworkWriter("127.0.0.1", port, dv.io.Stream.EventStream(0, "events", "DVXplorer_test", SIZE))
    source = open_source(f"tcp://127.0.0.1:{port}")
    timer = threading.Timer(DEADLINE_S, source.close)  # never wait longer than this for events
    timer.start()
    try:
        assert isinstance(source, NetworkSource) and source.live and source.sensor_size == SIZE
        assert "DVXplorer_test" in source.name
        rng = np.random.default_rng(0)
        sent = make_events(1_000_000 + np.arange(3000) * 10, rng.integers(0, SIZE[0], 3000),
                           rng.integers(0, SIZE[1], 3000), rng.integers(0, 2, 3000))
        for _ in range(200):  # the server counts the client once its connection is accepted
            if writer.getClientCount():
                break
            threading.Event().wait(0.01)
        for lo in range(0, len(sent), 1000):
            writer.writeEvents(to_event_store(sent[lo:lo + 1000]))
        received, count = [], 0
        for batch in source:
            received.append(batch)
            count += len(batch)
            if count >= len(sent):
                break
        assert np.array_equal(np.concatenate(received), sent)
    finally:
        timer.cancel()
        source.close()
        wait_for_no_clients(writer)
        del writer


@pytest.mark.timeout(60, method="thread")
def test_info_describes_a_few_seconds_of_a_live_stream(capsys):
    port = free_port()
    writer = dv.io.NetworkWriter("127.0.0.1", port, dv.io.Stream.EventStream(0, "events", "DVXplorer_test", SIZE))

    def feed(writer: dv.io.NetworkWriter) -> None:  # a steady stream, until the client goes
        t = 1_000_000
        while not stop.is_set():
            if writer.getClientCount():
                writer.writeEvents(to_event_store(make_events(t + np.arange(100), np.arange(100), np.arange(100),
                                                              np.ones(100))))
                t += 100
            stop.wait(0.01)

    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(writer,))  # an argument: the writer is deleted below
    feeder.start()
    try:
        assert main(["info", f"tcp://127.0.0.1:{port}"]) == 0
    finally:
        stop.set()
        feeder.join()
        wait_for_no_clients(writer)
        del writer
    out = capsys.readouterr().out
    assert "(live: 2 s sampled)" in out and "320 x 240" in out and "sees 240x240 at (40, 0)" in out
