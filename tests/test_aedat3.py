"""AEDAT 3.1 reader and writer, against hand-built bytes and SpikingJelly's load_aedat_v3 run verbatim."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from livegesture.events import EVENT_DTYPE, EventFormatError, make_events
from livegesture.reference import spikingjelly_function
from livegesture.sources import open_source
from livegesture.sources import aedat3
from livegesture.sources.aedat3 import Aedat3Recording, read_aedat3, write_aedat3
from livegesture.sources.labels import GestureSegment, labels_path_for, write_labels

HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
          b"#Start-Time: 2017-04-07 16:04:25 (TZ+0200)\r\n#!END-HEADER\r\n")
PACKET_HEADER_BYTES = 28


def word(x: int, y: int, p: int, valid: int = 1) -> int:
    return x << 17 | y << 2 | p << 1 | valid


def packet(events: list[tuple[int, int]], *, event_type: int = 1, size: int = 8, overflow: int = 0,
           number: int | None = None) -> bytes:
    """A packet holding ``events`` (data word, timestamp) as its eventCapacity slots, padded to ``size``."""
    body = b"".join(struct.pack("<II", data, ts).ljust(size, b"\xee") for data, ts in events)
    number = len(events) if number is None else number
    return struct.pack("<hhiiiiii", event_type, 1, size, 4, overflow, len(events), number, number) + body


def random_events(seed: int, n: int, sensor_size=(128, 128), t0: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, height = sensor_size
    return make_events(t0 + np.sort(rng.integers(0, 10_000_000, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def assert_matches_spikingjelly(path: Path) -> None:
    reference = spikingjelly_function("load_aedat_v3")(path)
    events = read_aedat3(path).events
    assert len(events) == len(reference["t"])
    for key in ("t", "x", "y", "p"):
        assert np.array_equal(events[key], reference[key]), key


def columns(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


def test_decodes_hand_computed_words(tmp_path):
    path = tmp_path / "hand.aedat"
    path.write_bytes(HEADER + packet([(0x000A001F, 1000), (0x00FE0000, 1001), (0x000001FE, 0x7FFFFFFF)], overflow=1))
    data = read_aedat3(path)
    assert columns(data.events) == [
        (2147484648, 5, 7, 1),      # 0x000A001F: x=5, y=7, p=1, valid; t = 1000 + 2**31
        (2147484649, 127, 0, 0),    # 0x00FE0000: x=127, y=0, p=0, invalid
        (4294967295, 0, 127, 1),    # 0x000001FE: x=0, y=127, p=1, invalid; t = 2**32 - 1
    ]
    assert data.invalid_events == 2
    assert data.sensor_size == (128, 128)
    assert data.header[0] == "#!AER-DAT3.1" and data.header[-1] == "#!END-HEADER"


@pytest.mark.parametrize("threads", [1, 2, 3, 7])  # runs of packets decoded in parallel, more runs than packets
@pytest.mark.parametrize("stride, frame_size", [
    (8, 16),   # every polarity event is a whole pair of 4-byte words: the word-view path
    (8, 13),   # a 13-byte packet shifts later packets off 4-byte alignment: the per-packet path
    (12, 16),  # a polarity packet with eventSize 12: the per-packet path
])
def test_mixed_packets_match_spikingjelly(tmp_path, monkeypatch, stride, frame_size, threads):
    monkeypatch.setattr(aedat3, "NUMPY_THREADS", threads)
    path = tmp_path / "mixed.aedat"
    path.write_bytes(HEADER + b"".join([
        packet([(0xFFFFFFFF, 0), (0xFFFFFFFF, 1)], event_type=0),             # special events: skipped
        packet([(word(1, 2, 1), 10), (word(3, 4, 0, valid=0), 20), (word(5, 6, 1), 30)]),
        packet([(0x12345678, 3)], event_type=2, size=frame_size),             # frame-like packet: skipped
        packet([(word(7, 8, 0), 40), (word(9, 10, 1), 50)], size=stride),
        packet([(word(11, 12, 1), 60), (word(13, 14, 0), 70),                  # capacity 4 > number 2:
                (word(15, 16, 1, valid=0), 80), (word(17, 18, 0, valid=0), 90)], number=2),  # all 4 read
        packet([], event_type=1),                                              # empty polarity packet
        packet([(word(127, 127, 1), 5), (word(0, 0, 0), 7)], overflow=1),
    ]))
    data = read_aedat3(path)
    assert columns(data.events) == [
        (10, 1, 2, 1), (20, 3, 4, 0), (30, 5, 6, 1), (40, 7, 8, 0), (50, 9, 10, 1),
        (60, 11, 12, 1), (70, 13, 14, 0), (80, 15, 16, 1), (90, 17, 18, 0),
        (2**31 + 5, 127, 127, 1), (2**31 + 7, 0, 0, 0),
    ]
    assert data.invalid_events == 3
    assert_matches_spikingjelly(path)


@pytest.mark.parametrize("threads", [1, 3])
def test_round_trip_across_timestamp_overflow(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(aedat3, "NUMPY_THREADS", threads)
    path = tmp_path / "overflow.aedat"
    events = random_events(0, 5000, t0=2**31 - 5_000_000)
    write_aedat3(path, events, packet_events=1000)
    data = read_aedat3(path)
    assert np.array_equal(data.events, events)
    assert data.invalid_events == 0
    assert_matches_spikingjelly(path)


def test_writer_layout_is_parsed_independently(tmp_path):
    path = tmp_path / "layout.aedat"
    events = random_events(1, 2500, t0=2**31 - 5_000_000)
    start = datetime(2017, 4, 7, 16, 4, 25, tzinfo=timezone(timedelta(hours=2)))
    write_aedat3(path, events, packet_events=1000, start_time=start)
    raw = path.read_bytes()
    header_end = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    assert raw[:header_end] == HEADER
    pos, seen, counts = header_end, 0, []
    while pos < len(raw):
        e_type, source, size, ts_offset, overflow, capacity, number, valid = struct.unpack_from("<hhiiiiii", raw, pos)
        assert (e_type, source, size, ts_offset) == (1, 1, 8, 4)
        assert capacity == number == valid <= 1000
        body = np.frombuffer(raw, "<u4", 2 * capacity, pos + PACKET_HEADER_BYTES).reshape(-1, 2)
        chunk = events[seen:seen + capacity]
        assert np.all(chunk["t"] >> 31 == overflow)
        assert np.array_equal(body[:, 1], chunk["t"] - (overflow << 31))
        assert np.all(body[:, 0] & 1 == 1)
        seen += capacity
        counts.append(capacity)
        pos += PACKET_HEADER_BYTES + 8 * capacity
    crossing = int(np.searchsorted(events["t"], 2**31))
    assert seen == len(events) and 0 < crossing < len(events)
    assert crossing in np.cumsum(counts)  # a packet ends where the overflow changes


def test_davis346_round_trip_reads_its_sensor_size(tmp_path):
    path = tmp_path / "davis.aedat"
    events = random_events(2, 3000, sensor_size=(346, 260))
    write_aedat3(path, events, (346, 260))
    data = read_aedat3(path)
    assert data.sensor_size == (346, 260) and "#Source 1: DAVIS346" in data.header
    assert np.array_equal(data.events, events)


@pytest.mark.parametrize("source_line, expected", [
    (b"#Source 1: DAVIS346B\r\n", (346, 260)),
    (b"#Source 2: DAVIS240C\r\n", (240, 180)),
    (b"#Source 2: Davis240C\r\n", (240, 180)),
    (b"#Source 1: davis640\r\n", (640, 480)),
    (b"#Source 1: DVXplorer Lite\r\n", (320, 240)),
    (b"#Source 1: DVXplorer\r\n", (640, 480)),
    (b"#Source 1: File,dvsSizeX=304,dvsSizeY=240,apsSizeX=0,apsSizeY=0\r\n", (304, 240)),
    (b"", (128, 128)),
])
def test_sensor_size_from_header(tmp_path, source_line, expected):
    path = tmp_path / "source.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n" + source_line + b"#!END-HEADER\r\n" + packet([(word(1, 1, 1), 1)]))
    assert read_aedat3(path).sensor_size == expected


def test_unknown_camera_without_size_fields_is_named(tmp_path):
    path = tmp_path / "source.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Source 1: SomeOtherCamera\r\n#!END-HEADER\r\n" + packet([(word(1, 1, 1), 1)]))
    with pytest.raises(EventFormatError, match="unknown camera 'SomeOtherCamera' in the header") as info:
        read_aedat3(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_empty_recording_reads_as_zero_events(tmp_path):
    path = tmp_path / "empty.aedat"
    write_aedat3(path, np.zeros(0, EVENT_DTYPE))
    data = read_aedat3(path)
    assert data.events.dtype == EVENT_DTYPE and len(data.events) == 0 and data.invalid_events == 0
    assert len(spikingjelly_function("load_aedat_v3")(path)["t"]) == 0
    with Aedat3Recording(path) as recording:
        assert list(recording) == [] and recording.sensor_size == (128, 128) and recording.labels is None


def test_recording_batches_and_sidecar_labels(tmp_path):
    path = tmp_path / "user01_led.aedat"
    events = random_events(3, 25_001)
    write_aedat3(path, events)
    segments = [GestureSegment(0, 100, 5_000_000), GestureSegment(10, 4_000_000, 9_000_000)]
    write_labels(labels_path_for(path), segments)
    recording = open_source(str(path))
    assert isinstance(recording, Aedat3Recording)
    assert recording.name == str(path) and recording.sensor_size == (128, 128) and not recording.live
    assert recording.labels == segments and recording.invalid_events == 0
    batches = list(recording)
    assert [len(b) for b in batches] == [10_000, 10_000, 5_001]
    assert np.array_equal(np.concatenate(batches), events)
    assert sum(len(b) for b in Aedat3Recording(path, batch_events=7)) == len(events)  # iterates again
    recording.close()
    recording.close()
    with pytest.raises(ValueError, match="closed"):
        list(recording)


GOOD_PACKET = packet([(word(1, 2, 1), 10), (word(3, 4, 0), 20)])


@pytest.mark.parametrize("content, problem", [
    (None, "cannot read file"),
    (b"", "file is empty"),
    (b"#!AER-DAT4.0\r\n" + bytes(range(64)), "AEDAT version '4.0'"),
    (b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + bytes(40), "AEDAT version '2.0'"),
    (bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)), "not an AEDAT file"),
    (b"#!AER-DAT3.1\r\n#Format: RAW\r\n" + GOOD_PACKET, "no '#!END-HEADER'"),
    (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "no '#!END-HEADER'"),
    (HEADER + GOOD_PACKET + GOOD_PACKET[:10],
     f"truncated packet header at byte {len(HEADER) + len(GOOD_PACKET)}: 18 of 28 bytes missing"),
    (HEADER + GOOD_PACKET[:-3], f"packet at byte {len(HEADER)} (type 1) declares 2 x 8 = 16 bytes"
                                f" of events, 3 bytes missing"),
    (HEADER + packet([(0, 0)], event_type=0)[:-1], "1 bytes missing"),
    (HEADER + packet([(word(1, 2, 1), 10)], size=4), f"polarity packet at byte {len(HEADER)} has eventSize 4"),
    (HEADER + packet([(word(200, 2, 1), 10)]), "outside the 128x128 sensor"),
    (HEADER + packet([(word(1, 2, 1), 10), (word(1, 2, 1), 5)]),
     "timestamp reset at event 1: time goes from 10 us back to 5 us"),
    (HEADER + packet([(word(1, 2, 1), 10)], overflow=1) + packet([(word(1, 2, 1), 20)]), "timestamp reset at event 1"),
])
def test_bad_input_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad_recording.aedat"
    if content is not None:
        path.write_bytes(content)
    for opener in (read_aedat3, Aedat3Recording):
        with pytest.raises(EventFormatError) as info:
            opener(path)
        assert str(path) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize("events, sensor_size, problem", [
    (random_events(4, 10), (100, 100), "no AEDAT 3.1 camera name"),
    (random_events(4, 10)[::-1], (128, 128), "not sorted"),
    (make_events([-5, 1], [0, 0], [0, 0], [0, 1]), (128, 128), "do not fit"),
    (make_events([1, 2], [0, 128], [0, 0], [0, 1]), (128, 128), "outside"),
])
def test_writer_refuses_what_cannot_be_read_back(tmp_path, events, sensor_size, problem):
    path = tmp_path / "out.aedat"
    with pytest.raises(EventFormatError, match=problem) as info:
        write_aedat3(path, events, sensor_size)
    assert str(path) in str(info.value)


TRUNCATE_WHILE_PARSING = """
import sys
from pathlib import Path
from livegesture.sources import {module} as reader
path = Path(sys.argv[1])
step = reader.{step}

def truncated_first(*args):
    with open(path, "r+b") as f:  # another program rewrites the file while it is being read
        f.truncate(4096)
    return step(*args)

reader.{step} = truncated_first
print(reader.{read}(path).events.size)
"""


def events_read_while_truncated(path: Path, module: str, step: str, read: str) -> int:
    """In a child process (a SIGBUS would kill it): ``module.read(path)``'s event count, the file
    truncated by another program once the reader reaches ``module.step``."""
    import subprocess
    import sys

    script = TRUNCATE_WHILE_PARSING.format(module=module, step=step, read=read)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-500:]
    return int(result.stdout)


def test_a_file_rewritten_while_parsed_does_not_kill_the_process(tmp_path):
    """A mapped file truncated under the reader killed it with SIGBUS; the reader now owns a copy."""
    events = make_events(np.arange(200_000), np.arange(200_000) % 128, np.zeros(200_000), np.ones(200_000))
    path = tmp_path / "rewritten.aedat"
    write_aedat3(path, events)
    assert events_read_while_truncated(path, "aedat3", "_polarity_packets", "read_aedat3") == 200_000


def test_a_file_changing_while_read_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "growing.aedat"
    write_aedat3(path, make_events([1, 2], [3, 4], [5, 6], [1, 0]))
    real_fstat, calls = aedat3.os.fstat, []

    def fstat_after_an_append(fd):
        calls.append(fd)
        if len(calls) == 2:  # after the read, before the second look: a recorder appends a packet
            with open(path, "ab") as f:
                f.write(bytes(28))
        return real_fstat(fd)

    monkeypatch.setattr(aedat3.os, "fstat", fstat_after_an_append)
    with pytest.raises(EventFormatError, match="file changed while reading") as err:
        read_aedat3(path)
    assert err.value.source == str(path)
