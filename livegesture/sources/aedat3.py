"""AEDAT 3.1 recordings (the IBM DVS128 Gesture format): a vectorised reader and a writer.

Layout: ASCII header lines starting with ``#`` (the first ``#!AER-DAT3.1``, the last
``#!END-HEADER``, each ending in CRLF), then packets. A packet is a 28-byte
little-endian header (int16 eventType, int16 eventSource, int32 eventSize,
int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber,
int32 eventValid) followed by ``eventCapacity * eventSize`` bytes. Polarity events
(type 1) start with two uint32: the data word (bit 0 valid, bit 1 polarity, y in
bits 2-16, x in bits 17-31) and the timestamp; ``t = timestamp | tsOverflow << 31``.

The reader agrees event for event with SpikingJelly's ``load_aedat_v3``, the
training reference: it takes ``eventCapacity`` events of every type-1 packet with
stride ``eventSize``, keeps events whose valid bit is clear (and counts them), and
skips packets of other types. Only the packet headers are walked in Python.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
import re
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from livegesture.events import DVS128_SIZE, EVENT_DTYPE, NUMPY_THREADS, EventFormatError, SensorSize, validate_events
from livegesture.sources.base import InMemoryRecording
from livegesture.sources.resets import OnReset, TimestampReset, resolve_resets

MAGIC = b"#!AER-DAT"
VERSION_LINE = b"#!AER-DAT3.1"
END_HEADER_LINE = b"#!END-HEADER\r\n"
PACKET_HEADER = struct.Struct("<HHIIIIII")
PACKET_FIELDS_READ = struct.Struct("<H2xI4xII8x")
"""The header fields the reader needs: eventType, eventSize, eventTSOverflow, eventCapacity."""
"""eventType, eventSource, eventSize, eventTSOffset, eventTSOverflow, eventCapacity,
eventNumber, eventValid; unsigned, as SpikingJelly unpacks them."""
POLARITY_EVENT = 1
POLARITY_EVENT_BYTES = 8
WORD_BYTES = 4
TIMESTAMP_OFFSET = 4  # byte offset of the timestamp inside a polarity event
OVERFLOW_SHIFT = 31
TIMESTAMP_MASK = (1 << OVERFLOW_SHIFT) - 1
MAX_OVERFLOW = 2**31 - 1  # the format's fields are int32
COORDINATE_MASK = 0x7FFF
X_SHIFT, Y_SHIFT, POLARITY_SHIFT = 17, 2, 1
VALID_BIT = 1
WRITER_SOURCE_ID = 1
DEFAULT_PACKET_EVENTS = 4096
DEFAULT_BATCH_EVENTS = 10_000
START_TIME_FORMAT = "%Y-%m-%d %H:%M:%S (TZ%z)"

CAMERA_MODELS: dict[str, tuple[str, SensorSize]] = {
    "dvxplorerlite": ("DVXplorer Lite", (320, 240)),
    "dvxplorermini": ("DVXplorer Mini", (640, 480)),
    "dvxplorer": ("DVXplorer", (640, 480)),
    "dvs128": ("DVS128", DVS128_SIZE),
    "davis128": ("DAVIS128", DVS128_SIZE),
    "davis208": ("DAVIS208", (208, 192)),
    "davis240": ("DAVIS240", (240, 180)),
    "davis346": ("DAVIS346", (346, 260)),
    "davis640": ("DAVIS640", (640, 480)),
}
"""The known iniVation models by the prefix of their name (lower case, letters and digits only, so
``Davis240C``, ``DAVIS346B`` and ``DVXplorer Lite`` match), longest prefixes first: the camera
name and its sensor size (width, height)."""
WRITER_MODELS = ("dvs128", "davis240", "davis346")
"""The models :func:`write_aedat3` names for a sensor size."""

_SOURCE_LINE = re.compile(r"#Source \d+: *([^,\r\n]*)")
_SIZE_FIELDS = re.compile(r"dvsSizeX=(\d+),dvsSizeY=(\d+)")
"""cAER's size fields (``#Source N: File,dvsSizeX=346,dvsSizeY=260,...``)."""


@dataclass(frozen=True)
class Aedat3Data:
    """One decoded recording: validated ``events``, ``sensor_size`` (width, height),
    the number of events whose valid bit is clear (kept, as SpikingJelly keeps them),
    the ``header`` lines without their line endings and the timestamp ``resets`` found."""

    events: np.ndarray
    sensor_size: SensorSize
    invalid_events: int
    header: tuple[str, ...]
    resets: tuple[TimestampReset, ...] = ()


class _PolarityPackets(NamedTuple):
    """The non-empty polarity packets, one int64 array per header field."""

    data_start: np.ndarray
    capacity: np.ndarray
    size: np.ndarray
    overflow: np.ndarray


def _unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_ino, before.st_size, before.st_mtime_ns) == (after.st_ino, after.st_size, after.st_mtime_ns)


def read_whole(path: Path) -> bytearray:
    """The whole file, read into memory in one pass of ``readinto`` (no Python copy); the AEDAT 3.1
    and AEDAT 2.0 readers both read their files this way.

    Not mapped: a mapped file truncated or rewritten while it is read kills the process with
    SIGBUS, which Python cannot catch. A file whose size, inode or modification time changes
    during the read (a recorder still writing it, a copy over it) raises
    :class:`EventFormatError` "file changed while reading".
    """
    try:
        with open(path, "rb", buffering=0) as f:
            before = os.fstat(f.fileno())
            if before.st_size == 0:
                raise EventFormatError(path, "file is empty")
            buf = bytearray(before.st_size)
            view, filled = memoryview(buf), 0
            while filled < len(buf):
                count = f.readinto(view[filled:])
                if not count:
                    break
                filled += count
            after = os.fstat(f.fileno())
    except OSError as err:
        raise EventFormatError(path, f"cannot read file: {err.strerror or err}") from err
    if filled != len(buf) or not _unchanged(before, after):
        raise EventFormatError(path, "file changed while reading (is it still being written?); read it again "
                                     "once it is complete")
    return buf


def _split_header(path: Path, buf: bytearray) -> tuple[tuple[str, ...], int]:
    """The header lines and the byte offset where packets start."""
    if buf[:len(MAGIC)] != MAGIC:
        raise EventFormatError(path, "not an AEDAT file: it does not start with '#!AER-DAT'")
    first_end = buf.find(b"\n")
    first = buf[:first_end if first_end >= 0 else len(VERSION_LINE) + 1].rstrip(b"\r")
    if first != VERSION_LINE:
        version = first[len(MAGIC):][:16].decode("ascii", "replace")
        raise EventFormatError(path, f"AEDAT version {version!r}, expected AEDAT 3.1 ('#!AER-DAT3.1')")
    lines = []
    pos = 0
    while True:
        end = buf.find(b"\n", pos)
        if end < 0 or buf[pos:pos + 1] != b"#":
            raise EventFormatError(path, f"header has no '#!END-HEADER' line (header text stops at byte {pos})")
        line = buf[pos:end + 1]
        lines.append(line.rstrip(b"\r\n").decode("ascii", "replace"))
        pos = end + 1
        if line == END_HEADER_LINE:
            return tuple(lines), pos


def camera_model(name: str) -> tuple[str, SensorSize] | None:
    """The known model a camera name starts with (case and punctuation ignored), or None."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return next((model for prefix, model in CAMERA_MODELS.items() if key.startswith(prefix)), None)


def sensor_size_from_header(header: tuple[str, ...], source: object = "header") -> SensorSize:
    """The sensor size a header declares: the first ``#Source`` camera that is a known model,
    else cAER's ``dvsSizeX=``/``dvsSizeY=`` fields, else DVS128 when no camera is named at all;
    :class:`EventFormatError` naming ``source`` and the camera when one is named but unknown."""
    names = [match.group(1).strip() for line in header if (match := _SOURCE_LINE.match(line))]
    for name in names:
        model = camera_model(name)
        if model is not None:
            return model[1]
    for line in header:
        fields = _SIZE_FIELDS.search(line)
        if fields:
            return int(fields.group(1)), int(fields.group(2))
    if names:
        known = ", ".join(name for name, _ in CAMERA_MODELS.values())
        raise EventFormatError(source, f"unknown camera {names[0]!r} in the header and no dvsSizeX/dvsSizeY "
                                       f"fields: its sensor size is unknown (known cameras: {known})")
    return DVS128_SIZE


def _polarity_packets(path: Path, buf: bytearray, pos: int) -> _PolarityPackets:
    """Walk and check every packet header from ``pos``; the non-empty polarity packets."""
    found: list[tuple[int, int, int, int]] = []  # (data_start, capacity, size, overflow)
    total = len(buf)
    unpack = PACKET_FIELDS_READ.unpack_from
    while pos < total:
        if total - pos < PACKET_HEADER.size:
            raise EventFormatError(
                path, f"truncated packet header at byte {pos}: {PACKET_HEADER.size - (total - pos)} "
                f"of {PACKET_HEADER.size} bytes missing")
        event_type, size, overflow, capacity = unpack(buf, pos)
        data_start = pos + PACKET_HEADER.size
        pos = data_start + capacity * size
        if pos > total:
            raise EventFormatError(
                path, f"truncated packet data: the packet at byte {data_start - PACKET_HEADER.size} (type "
                f"{event_type}) declares {capacity} x {size} = {capacity * size} bytes of events, "
                f"{pos - total} bytes missing")
        if event_type == POLARITY_EVENT and capacity:
            if size < POLARITY_EVENT_BYTES:
                raise EventFormatError(
                    path, f"polarity packet at byte {data_start - PACKET_HEADER.size} has eventSize {size}, "
                    f"at least {POLARITY_EVENT_BYTES} is needed")
            found.append((data_start, capacity, size, overflow))
    table = np.array(found, dtype=np.int64).reshape(-1, 4)
    return _PolarityPackets(*(np.ascontiguousarray(column) for column in table.T))


def _event_words(buf: bytearray, pos: int, packets: _PolarityPackets) -> np.ndarray:
    """The data word and timestamp (uint32) of every polarity event, as an (N, 2) copy."""
    if np.all(packets.size == POLARITY_EVENT_BYTES) and np.all((packets.data_start - pos) % WORD_BYTES == 0):
        # The usual layout: events are whole word pairs of one word view; keep their runs.
        words = np.frombuffer(buf, "<u4", count=(len(buf) - pos) // WORD_BYTES, offset=pos)
        first = (packets.data_start - pos) // WORD_BYTES
        lengths = packets.capacity * (POLARITY_EVENT_BYTES // WORD_BYTES)
        runs = np.empty(2 * len(first), dtype=np.int64)
        runs[0::2] = np.diff(first, prepend=0) - np.concatenate(([0], lengths[:-1]))  # headers, other packets
        runs[1::2] = lengths
        keep = np.repeat(np.tile([False, True], len(first)), runs)
        return words[:len(keep)][keep].reshape(-1, 2)
    return np.concatenate([
        np.ndarray((capacity, 2), dtype="<u4", buffer=buf, offset=start, strides=(size, WORD_BYTES))
        for start, capacity, size in zip(packets.data_start.tolist(), packets.capacity.tolist(), packets.size.tolist())
    ])


def _decode_into(events: np.ndarray, words: np.ndarray) -> int:
    """Fill ``events`` (t without the overflow) from its (N, 2) event words; the invalid count.

    Each packed field is filled once through ``out=`` (strided fields are slow to write)."""
    data = np.ascontiguousarray(words[:, 0])
    events["t"] = words[:, 1]
    np.right_shift(data, X_SHIFT, out=events["x"], casting="unsafe")  # the top 15 bits: no mask needed
    scratch = np.right_shift(data, Y_SHIFT)
    events["y"] = np.bitwise_and(scratch, COORDINATE_MASK, out=scratch)
    np.right_shift(data, POLARITY_SHIFT, out=scratch)
    events["p"] = np.bitwise_and(scratch, 1, out=scratch)
    return len(data) - int(np.count_nonzero(np.bitwise_and(data, VALID_BIT, out=scratch)))


def _decode(buf: bytearray, packets: _PolarityPackets) -> tuple[np.ndarray, int]:
    """The events of all polarity packets, and how many have their valid bit clear.

    The packets are cut into one run per thread (``NUMPY_THREADS``), each run's words gathered
    and decoded on its own thread: numpy's integer loops release the GIL, so they run in
    parallel (no library decodes AEDAT 3.1 words; this is the reader's hot loop).
    """
    ends = np.cumsum(packets.capacity)
    starts = ends - packets.capacity
    events = np.empty(int(ends[-1]) if len(ends) else 0, dtype=EVENT_DTYPE)
    cuts = np.searchsorted(ends, np.linspace(0, len(events), NUMPY_THREADS + 1)[1:-1], side="right").tolist()
    runs = [(lo, hi) for lo, hi in zip([0, *cuts], [*cuts, len(ends)]) if hi > lo]

    def decode_run(run: tuple[int, int]) -> int:
        lo, hi = run
        group = _PolarityPackets(*(column[lo:hi] for column in packets))
        return _decode_into(events[starts[lo]:ends[hi - 1]], _event_words(buf, int(group.data_start[0]), group))

    with ThreadPoolExecutor(NUMPY_THREADS) as pool:
        invalid = sum(pool.map(decode_run, runs))
    if np.any(packets.overflow):
        events["t"] |= np.repeat(packets.overflow << OVERFLOW_SHIFT, packets.capacity)
    return events, invalid


def read_aedat3(path: str | Path, on_reset: OnReset = "error") -> Aedat3Data:
    """Read and validate an AEDAT 3.1 file; every problem raises :class:`EventFormatError`.

    A file with a valid header and no polarity events reads as zero events. The sensor size is
    the header's (:func:`sensor_size_from_header`). Timestamps that go backwards are handled
    as ``on_reset`` says (:func:`~livegesture.sources.resets.resolve_resets`).
    """
    path = Path(path)
    buf = read_whole(path)
    header, pos = _split_header(path, buf)
    events, invalid = _decode(buf, _polarity_packets(path, buf, pos))
    sensor_size = sensor_size_from_header(header, path)
    events, resets = resolve_resets(events, on_reset, path)
    events, _ = validate_events(events, sensor_size, path)
    return Aedat3Data(events, sensor_size, invalid, header, resets)


def _source_name(path: Path, sensor_size: SensorSize) -> str:
    for key in WRITER_MODELS:
        name, size = CAMERA_MODELS[key]
        if tuple(sensor_size) == size:
            return name
    known = ", ".join(f"{CAMERA_MODELS[key][0]} {w}x{h}" for key in WRITER_MODELS for w, h in [CAMERA_MODELS[key][1]])
    raise EventFormatError(path, f"no AEDAT 3.1 camera name for sensor size {sensor_size}; known: {known}")


def write_aedat3(
    path: str | Path,
    events: np.ndarray,
    sensor_size: SensorSize = DVS128_SIZE,
    *,
    packet_events: int = DEFAULT_PACKET_EVENTS,
    start_time: datetime | None = None,
) -> None:
    """Write events as an AEDAT 3.1 file as cAER records a camera.

    Header ``#!AER-DAT3.1``, ``#Format: RAW``, ``#Source 1: <camera>``, ``#Start-Time:
    <start_time (timezone-aware) or now>``, ``#!END-HEADER``; then polarity packets of at
    most ``packet_events`` events with valid bits set, a new packet wherever ``t >> 31``
    (the tsOverflow) changes. Events must be valid for ``sensor_size``, which must be a
    known camera's (see :data:`WRITER_MODELS`).
    """
    path = Path(path)
    if packet_events < 1:
        raise ValueError(f"packet_events must be at least 1, got {packet_events}")
    source_name = _source_name(path, sensor_size)
    events, _ = validate_events(events, sensor_size, path)
    t = events["t"]
    if len(t) and (t[0] < 0 or t[-1] >> OVERFLOW_SHIFT > MAX_OVERFLOW):
        raise EventFormatError(path, f"timestamps {t[0]}..{t[-1]} us do not fit AEDAT 3.1 (0 to 2**62)")

    words = np.empty((len(events), 2), dtype="<u4")
    words[:, 0] = (VALID_BIT | events["p"].astype(np.uint32) << POLARITY_SHIFT
                   | events["y"].astype(np.uint32) << Y_SHIFT | events["x"].astype(np.uint32) << X_SHIFT)
    words[:, 1] = t & TIMESTAMP_MASK
    overflow = t >> OVERFLOW_SHIFT
    group_bounds = [0, *(np.flatnonzero(overflow[1:] != overflow[:-1]) + 1).tolist(), len(t)]
    starts = [s for lo, hi in zip(group_bounds[:-1], group_bounds[1:]) for s in range(lo, hi, packet_events)]

    recorded = start_time or datetime.now().astimezone()
    text = "".join(line + "\r\n" for line in (
        VERSION_LINE.decode(), "#Format: RAW", f"#Source {WRITER_SOURCE_ID}: {source_name}",
        f"#Start-Time: {recorded.strftime(START_TIME_FORMAT)}", END_HEADER_LINE.decode().rstrip()))
    with open(path, "wb") as f:
        f.write(text.encode("ascii"))
        for lo, hi in zip(starts, [*starts[1:], len(t)]):
            n = hi - lo
            f.write(PACKET_HEADER.pack(POLARITY_EVENT, WRITER_SOURCE_ID, POLARITY_EVENT_BYTES, TIMESTAMP_OFFSET,
                                       int(overflow[lo]), n, n, n))
            f.write(words[lo:hi].data)


class Aedat3Recording(InMemoryRecording):
    """An AEDAT 3.1 file as an event source, read whole when opened (see :class:`InMemoryRecording`).

    ``invalid_events``, ``header`` and ``resets`` are those of :func:`read_aedat3`.
    """

    def __init__(self, path: str | Path, *, batch_events: int = DEFAULT_BATCH_EVENTS,
                 on_reset: OnReset = "error") -> None:
        data = read_aedat3(path, on_reset)
        super().__init__(path, data.events, data.sensor_size, data.resets, batch_events)
        self.invalid_events = data.invalid_events
        self.header = data.header
