"""aedat4 reading and writing through dv-processing, on a real DAVIS346 recording and round trips."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from livegesture.events import EVENT_DTYPE, EventFormatError, make_events
from livegesture.sources import open_source
from livegesture.sources.aedat4 import (
    VERSION_LINE,
    Aedat4Recording,
    Aedat4Writer,
    IncompleteRecordingWarning,
    _data_table_position,
    from_event_store,
    to_event_store,
    write_aedat4,
)
from livegesture.sources.labels import GestureSegment, write_labels

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
SAMPLE = SHARED_DATA / "davis346_sample.aedat4"
SAMPLE_EVENTS = 117_667
SAMPLE_SIZE = (346, 260)
SIZE = (128, 128)


def random_events(n: int, seed: int = 0, size: tuple[int, int] = SIZE, t0: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = t0 + np.sort(rng.integers(0, 50 * n + 1, n))
    return make_events(t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n))


def read_all(path: Path) -> np.ndarray:
    with Aedat4Recording(path) as recording:
        return np.concatenate(list(recording))


@pytest.fixture
def sample() -> Path:
    if not SAMPLE.exists():
        pytest.skip(f"sample recording {SAMPLE} is absent")
    return SAMPLE


def test_real_davis346_recording_with_frames_and_imu(sample):
    recording = open_source(sample)
    assert isinstance(recording, Aedat4Recording)
    assert recording.sensor_size == SAMPLE_SIZE
    assert recording.labels is None and recording.incomplete is None
    batches = list(recording)
    events = np.concatenate(batches)
    assert events.dtype == EVENT_DTYPE and events.size == SAMPLE_EVENTS
    assert len(batches) > 1
    duration_s = (events["t"][-1] - events["t"][0]) / 1e6
    assert 0.12 < duration_s < 0.14
    assert np.all(np.diff(events["t"]) >= 0)
    assert set(np.unique(events["p"])) == {0, 1}
    assert events["x"].max() < SAMPLE_SIZE[0] and events["y"].max() < SAMPLE_SIZE[1]
    again = np.concatenate(list(recording))  # iterating restarts from the beginning
    assert np.array_equal(events, again)
    recording.close()
    with pytest.raises(ValueError, match="closed"):
        list(recording)


def test_write_then_read_back_exactly(tmp_path):
    events = random_events(30_000)
    path = tmp_path / "round.aedat4"
    write_aedat4(path, events, SIZE)
    recording = Aedat4Recording(path)
    assert recording.sensor_size == SIZE and recording.incomplete is None
    assert np.array_equal(np.concatenate(list(recording)), events)


def test_incremental_writer_keeps_every_event_once(tmp_path):
    events = random_events(10_000, seed=1)
    path = tmp_path / "incremental.aedat4"
    with Aedat4Writer(path, SIZE, camera_name="DVS128_TEST") as writer:
        # views of one array, including an empty one: dv's slice bug would duplicate events here
        for lo, hi in [(0, 3000), (3000, 3000), (3000, 7000), (7000, 10_000)]:
            writer.write(events[lo:hi])
        assert writer.events_written == events.size
    writer.close()  # idempotent
    recording = Aedat4Recording(path)
    assert recording.camera_name == "DVS128_TEST"
    assert np.array_equal(np.concatenate(list(recording)), events)
    with pytest.raises(ValueError, match="closed"):
        writer.write(events[:1])


def test_close_finalises_the_file(tmp_path):
    path = tmp_path / "closed.aedat4"
    writer = Aedat4Writer(path, SIZE)
    writer.write(random_events(100))
    writer.close()
    data = path.read_bytes()
    (header_size,) = struct.unpack_from("<i", data, len(VERSION_LINE))
    table = _data_table_position(data[len(VERSION_LINE) + 4:][:header_size])
    assert 0 < table < len(data)  # the index is there: the file is complete
    assert read_all(path).size == 100


def test_event_store_conversion_round_trip():
    events = make_events([5, 5, 9, 2**40], [0, 127, 3, 64], [127, 0, 4, 64], [1, 0, 1, 0])
    store = to_event_store(events)
    assert len(store) == 4
    assert store.numpy()["timestamp"].tolist() == [5, 5, 9, 2**40]
    assert store.numpy()["polarity"].tolist() == [1, 0, 1, 0]
    assert np.array_equal(from_event_store(store), events)
    assert from_event_store(to_event_store(events[:0])).size == 0


def test_labels_sidecar_is_read(tmp_path):
    path = tmp_path / "user01_led.aedat4"
    write_aedat4(path, random_events(10), SIZE)
    write_labels(tmp_path / "user01_led_labels.csv", [GestureSegment(2, 0, 400)])
    assert Aedat4Recording(path).labels == [GestureSegment(2, 0, 400)]


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "file not found"),
        (b"", "file is empty"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n" + bytes(64), "AEDAT 3.1 file, not AEDAT 4.0"),
        (bytes(range(256)) * 8, "not an aedat4 file"),
        (VERSION_LINE + b"\x24\x0c\x00\x00IOHE", "truncated or corrupt"),
    ],
    ids=["missing", "empty", "aedat3.1", "random", "header-cut"],
)
def test_unreadable_files_name_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad.aedat4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EventFormatError, match=problem) as info:
        Aedat4Recording(path)
    assert info.value.source == str(path)
    assert "Stacktrace" not in str(info.value) and ".hpp" not in str(info.value)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_finalised_file_is_refused(sample, tmp_path, keep):
    data = sample.read_bytes()
    path = tmp_path / "cut.aedat4"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(EventFormatError, match="truncated or corrupt"):
        Aedat4Recording(path)


def unfinalise(path: Path, cut: int = 0) -> None:
    """Make a finalised file look like one whose recorder was killed: no index (the header's
    ``dataTablePosition`` back to -1), and ``cut`` bytes of the last packet missing."""
    data = bytearray(path.read_bytes())
    (header_size,) = struct.unpack_from("<i", data, len(VERSION_LINE))
    header_start = len(VERSION_LINE) + 4
    table = _data_table_position(bytes(data[header_start:header_start + header_size]))
    field = data.index(struct.pack("<q", table), header_start, header_start + header_size)
    data[field:field + 8] = struct.pack("<q", -1)  # as the header is before finalisation
    path.write_bytes(bytes(data[:table - cut]))


def test_unfinalised_truncated_file_reads_complete_packets_and_says_so(tmp_path):
    """A recorder killed while writing: no index, last packet cut. dv reads the rest silently; we warn."""
    path = tmp_path / "crashed.aedat4"
    events = random_events(4000, seed=2)
    with Aedat4Writer(path, SIZE) as writer:
        for lo in range(0, 4000, 1000):
            writer.write(events[lo:lo + 1000])  # one file packet per write
    unfinalise(path, cut=100)  # the index and the end of the 4th packet are missing

    with pytest.warns(IncompleteRecordingWarning, match="truncated"):
        recording = Aedat4Recording(path)
    assert "ends inside the data packet" in recording.incomplete
    assert np.array_equal(np.concatenate(list(recording)), events[:3000])


def test_recording_without_event_stream(tmp_path):
    import dv_processing as dv

    path = tmp_path / "frames.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.FrameOnlyConfig("cam", (8, 6)))
    writer.writeFrame(dv.Frame(1000, np.zeros((6, 8), np.uint8)))
    del writer
    with pytest.raises(EventFormatError, match=r"no event stream \(streams: frames\)"):
        Aedat4Recording(path)


def test_events_outside_the_sensor_fail_validation_when_read(tmp_path):
    import dv_processing as dv

    path = tmp_path / "outside.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("cam", (10, 10)))
    writer.writeEvents(to_event_store(make_events([1, 2], [3, 50], [3, 3], [1, 0])))  # dv does not check
    del writer
    recording = Aedat4Recording(path)
    with pytest.raises(EventFormatError, match=r"outside the 10x10 sensor, the first at x=50") as info:
        list(recording)
    assert info.value.source == str(path)


def test_unsorted_events_in_a_file_fail_validation(tmp_path):
    """dv's writer refuses unsorted events, so swap two timestamps in an uncompressed file."""
    import dv_processing as dv

    path = tmp_path / "unsorted.aedat4"
    config = dv.io.MonoCameraWriter.EventOnlyConfig("cam", SIZE, dv.CompressionType.NONE)
    writer = dv.io.MonoCameraWriter(str(path), config)
    writer.writeEvents(to_event_store(make_events([1000, 2000, 3000, 4000], [1, 2, 3, 4], [1, 2, 3, 4], [1, 0, 1, 0])))
    del writer
    data = bytearray(path.read_bytes())
    a, b = data.index(struct.pack("<q", 2000)), data.index(struct.pack("<q", 3000))
    data[a:a + 8], data[b:b + 8] = struct.pack("<q", 3000), struct.pack("<q", 2000)
    path.write_bytes(bytes(data))
    with pytest.raises(EventFormatError, match="timestamp reset at event 2: time goes from 3,000 us back to 2,000 us"):
        list(Aedat4Recording(path))


def test_writer_refuses_bad_events_with_the_file_name(tmp_path):
    path = tmp_path / "w.aedat4"
    with Aedat4Writer(path, SIZE) as writer:
        writer.write(make_events([10, 20], [1, 2], [1, 2], [1, 1]))
        with pytest.raises(EventFormatError, match="outside the 128x128 sensor"):
            writer.write(make_events([30], [128], [0], [1]))
        with pytest.raises(EventFormatError, match="backwards between batches"):
            writer.write(make_events([15], [1], [1], [1]))
    assert read_all(path)["t"].tolist() == [10, 20]
    with pytest.raises(EventFormatError, match="cannot create aedat4 file") as info:
        Aedat4Writer(tmp_path / "no" / "such" / "dir.aedat4", SIZE)
    assert "Stacktrace" not in str(info.value)


def packet_offsets(path: Path) -> list[tuple[int, int]]:
    """(header byte, payload size) of every packet of a finalised file, walked here independently."""
    data = path.read_bytes()
    (header_size,) = struct.unpack_from("<i", data, len(VERSION_LINE))
    header_start = len(VERSION_LINE) + 4
    table = _data_table_position(data[header_start:header_start + header_size])
    pos, packets = header_start + header_size, []
    while pos < table:
        _, size = struct.unpack_from("<ii", data, pos)
        packets.append((pos, size))
        pos += 8 + size
    return packets


def regular_events(n: int) -> np.ndarray:
    """A sweep over the sensor: compressible, so its packets are mostly LZ4/Zstandard matches, whose
    offsets and lengths a corruption breaks (random events would be mostly literals)."""
    i = np.arange(n)
    return make_events(i * 10, i % SIZE[0], (i // SIZE[0]) % SIZE[1], i % 2)


def corrupt_middle_packet(path: Path, compression_error: type[Exception], decompress) -> int:
    """Overwrite half of the middle packet's payload (from a third into it)
    with fixed random bytes, checked to break its compressed stream; returns the packet's header byte."""
    packets = packet_offsets(path)
    offset, size = packets[len(packets) // 2]
    data = bytearray(path.read_bytes())
    start = offset + 8 + size // 3
    length = size // 2
    data[start:start + length] = np.random.default_rng(3).bytes(length)
    with pytest.raises(compression_error):
        decompress(bytes(data[offset + 8:offset + 8 + size]))
    path.write_bytes(bytes(data))
    return offset


def livegesture_in_child(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
    """The command line in a child process: dv-processing hangs holding the GIL on a corrupt
    LZ4 packet, which no in-process timeout can interrupt."""
    return subprocess.run([sys.executable, "-m", "livegesture", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=Path(__file__).parents[1])


def test_corrupt_lz4_event_packet_is_reported_instead_of_hanging(tmp_path):
    import lz4.frame

    path = tmp_path / "corrupt.aedat4"
    write_aedat4(path, regular_events(200_000), SIZE)  # several packets
    offset = corrupt_middle_packet(path, RuntimeError, lz4.frame.decompress)
    problem = f"{path}: corrupt event packet at byte {offset} (LZ4: LZ4F_decompress failed with code: " \
              "ERROR_decompressionFailed)"
    start = time.monotonic()
    result = livegesture_in_child("info", str(path), timeout_s=10)
    assert time.monotonic() - start < 5  # of which ~1-2 s start the interpreter
    assert (result.returncode, result.stderr.strip()) == (2, f"livegesture: error: {problem}")
    result = livegesture_in_child("run", str(path), "--headless", "--speed", "0", "--backend", "fast",
                                  "--config", str(tmp_path / "none.toml"))
    assert (result.returncode, result.stderr.strip()) == (2, f"livegesture: error: source: {problem}")


def test_corrupt_zstd_event_packet_is_reported(tmp_path):
    import dv_processing as dv
    import zstandard

    path = tmp_path / "corrupt_zstd.aedat4"
    config = dv.io.MonoCameraWriter.EventOnlyConfig("cam", SIZE, dv.CompressionType.ZSTD)
    writer = dv.io.MonoCameraWriter(str(path), config)
    events = regular_events(100_000)
    for lo in range(0, events.size, 20_000):
        writer.writeEvents(to_event_store(events[lo:lo + 20_000]))
    del writer
    assert np.array_equal(read_all(path), events)
    offset = corrupt_middle_packet(path, zstandard.ZstdError, zstandard.ZstdDecompressor().decompress)
    with pytest.raises(EventFormatError, match=rf"corrupt event packet at byte {offset} \(ZSTD: "):
        read_all(path)


def test_corrupt_packet_header_is_refused_at_open(tmp_path):
    path = tmp_path / "header.aedat4"
    write_aedat4(path, random_events(200_000, seed=6), SIZE)
    offset, size = packet_offsets(path)[1]
    data = bytearray(path.read_bytes())
    data[offset + 4:offset + 8] = struct.pack("<i", size + 1000)
    path.write_bytes(bytes(data))
    with pytest.raises(EventFormatError, match=rf"corrupt packet header at byte {offset + 8 + size + 1000}"):
        Aedat4Recording(path)


def test_corrupt_packet_of_an_unfinalised_file_is_reported_at_open(tmp_path):
    """dv decompresses every packet of such a file when it opens it (it builds the index): it hung there."""
    import lz4.frame

    path = tmp_path / "crashed.aedat4"
    write_aedat4(path, regular_events(200_000), SIZE)
    offset = corrupt_middle_packet(path, RuntimeError, lz4.frame.decompress)
    unfinalise(path)
    result = livegesture_in_child("info", str(path), timeout_s=10)
    assert (result.returncode, result.stderr.strip()) == (
        2, f"livegesture: error: {path}: corrupt event packet at byte {offset} (LZ4: LZ4F_decompress failed with "
           "code: ERROR_decompressionFailed)")


def test_corrupt_index_of_a_finalised_file_is_reported_at_open(tmp_path):
    """dv decompresses the index when it opens a finalised file: it hung on a corrupt one."""
    path = tmp_path / "index.aedat4"
    write_aedat4(path, regular_events(200_000), SIZE)
    data = bytearray(path.read_bytes())
    (header_size,) = struct.unpack_from("<i", data, len(VERSION_LINE))
    table = _data_table_position(bytes(data[len(VERSION_LINE) + 4:][:header_size]))
    start = table + (len(data) - table) // 3
    data[start:start + (len(data) - table) // 2] = np.random.default_rng(3).bytes((len(data) - table) // 2)
    path.write_bytes(bytes(data))
    result = livegesture_in_child("info", str(path), timeout_s=10)
    assert result.returncode == 2
    assert result.stderr.startswith(f"livegesture: error: {path}: file is truncated or corrupt: its index at byte "
                                    f"{table} does not decompress (LZ4: ")
