"""AEDAT 4 (``.aedat4``) recordings through dv-processing: reading, writing, conversions.

Layout (AEDAT 4.0): the line ``#!AER-DAT4.0\\r\\n``, an int32 size and an ``IOHeader``
flatbuffer (compression, ``dataTablePosition``, stream descriptions), then packets of
int32 stream id, int32 payload size and payload. A finalised file ends with an index
(the ``FileDataTable``) whose position the header holds; a file whose writer never
finished has ``dataTablePosition = -1``.

What dv-processing 2.0.4 does with damaged files, and what this module reports:

- a finalised file cut short: dv refuses it when opened (its index is missing or does not
  match); we raise :class:`EventFormatError` "truncated or corrupt";
- a file never finalised (the recorder crashed or was killed): dv reads the complete packets
  and silently drops a partial last one. We walk the packet headers, and
  :attr:`Aedat4Recording.incomplete` says what is missing (also issued as an
  :class:`IncompleteRecordingWarning`); the events that are there are read;
- a corrupted compressed event packet makes ``getNextEventBatch`` loop forever while holding
  the GIL: its LZ4 decoder (``Lz4DecompressionSupport::decompress``) loops while input is
  left, and after an ``LZ4F_decompress`` error it resets the context without consuming any.
  DV writes LZ4 frames without checksums, so nothing else notices. dv decompresses at open
  too: the file's index in a finalised file, every packet in one never finalised (it builds
  the index itself, ``Reader::buildFileDataTable``). So before dv sees the file, the packet
  headers (stream id and size) are walked and the index, or in an unfinalised file every
  packet, is decompressed with the reference LZ4 / Zstandard libraries (``lz4``,
  ``zstandard``: the same formats, from their authors); then :class:`PacketGuard` does the
  same for each event packet just before dv reads it. A problem raises
  :class:`EventFormatError` "corrupt event packet at byte N" (or "corrupt packet header",
  "... its index at byte N does not decompress"). Checking costs about 1 ms per MB of file.
"""

from __future__ import annotations

import os
import struct
import warnings
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dv_processing as dv
import lz4.frame
import numpy as np
import zstandard

from livegesture.events import EVENT_DTYPE, EventFormatError, SensorSize, StreamValidator
from livegesture.sources.base import EventSource
from livegesture.sources.labels import labels_path_for, read_labels
from livegesture.sources.resets import OnReset, ResetHandler, TimestampReset


VERSION_LINE = b"#!AER-DAT4.0\r\n"
AEDAT_MAGIC = b"#!AER-DAT"
INT32 = struct.Struct("<i")
PACKET_HEADER = struct.Struct("<ii")
"""Stream id and payload size of one packet."""
EVENTS_STREAM = "events"
"""The stream ``getNextEventBatch`` reads (its default ``streamName``)."""
EVENTS_TYPE = "EVTS"
"""The flatbuffer identifier of an event packet (the streams' ``typeIdentifier``)."""
EVENT_STRUCT_BYTES = 16
"""One ``dv::Event`` in a packet: int64 timestamp, int16 x, int16 y, bool polarity, padding."""
MAX_PACKET_BYTES = 1 << 28
"""A decompressed packet declaring more than this (256 MiB, some 16 M events) is corrupt:
DV writes packets of at most a few MB."""
DEFAULT_CAMERA_NAME = "livegesture"
WRITE_CHUNK_EVENTS = 1 << 16
"""Events per EventStore (and so per file packet) when writing; bounds the temporary lists."""
_TRUNCATION_MARKERS = ("FileDataTable", "End-Of-File")


class IncompleteRecordingWarning(UserWarning):
    """An aedat4 file was never finalised: it may end early."""


def dv_error_message(err: BaseException) -> str:
    """The readable part of a dv-processing error, without C++ source location and stack trace."""
    text = str(err).split("Stacktrace:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("/"):  # "/project/include/...hpp(183): function()"
        lines = lines[1:]
    return " ".join(lines) or type(err).__name__


def from_event_store(store: dv.EventStore) -> np.ndarray:
    """Convert a dv ``EventStore`` to an ``EVENT_DTYPE`` array (not validated).

    dv's int16 coordinates are cast to uint16, so a negative one becomes out of range
    and is caught by validation.
    """
    raw = store.numpy()
    events = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    events["t"] = raw["timestamp"]
    events["x"] = raw["x"]
    events["y"] = raw["y"]
    events["p"] = raw["polarity"]
    return events


def to_event_store(events: np.ndarray) -> dv.EventStore:
    """Convert sorted ``EVENT_DTYPE`` events to a dv ``EventStore``.

    dv has no bulk constructor, so this pushes event tuples one by one; ``zip`` over
    column lists consumed by ``deque(map(...))`` keeps the Python work minimal. Measured
    on a 2-core machine: 2.2-3.9 M events/s depending on load, against 1.6-2.5 M/s for
    ``push_back(t, x, y, p)`` with four arguments and 1.4-1.9 M/s for an ``EventPacket``
    built from ``dv.Event`` objects. Reading the other way (:func:`from_event_store`) runs
    at about 70 M/s; writing a file end to end at 1-2 M/s, the conversion being most of it.
    Timestamps that go backwards make dv raise ``IndexError``: validate first.
    """
    store = dv.EventStore()
    columns = (events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["p"].astype(bool).tolist())
    deque(map(store.push_back, zip(*columns)), maxlen=0)
    return store


def _field(buffer: bytes, table: int, index: int) -> int | None:
    """Position of field ``index`` of the flatbuffer table at ``table``, or None when absent."""
    (vtable_back,) = struct.unpack_from("<i", buffer, table)
    vtable = table - vtable_back
    (vtable_size,) = struct.unpack_from("<H", buffer, vtable)
    slot = vtable + 4 + 2 * index
    if slot + 2 > vtable + vtable_size:
        return None
    (offset,) = struct.unpack_from("<H", buffer, slot)
    return table + offset if offset else None


def _string(buffer: bytes, position: int) -> str:
    """The flatbuffer string whose offset is at ``position``."""
    start = position + struct.unpack_from("<I", buffer, position)[0]
    (length,) = struct.unpack_from("<I", buffer, start)
    return buffer[start + 4:start + 4 + length].decode("utf-8", "replace")


def _data_table_position(io_header: bytes) -> int:
    """``dataTablePosition`` (field 1, int64, default -1) of the IOHeader flatbuffer."""
    (root,) = struct.unpack_from("<I", io_header, 0)
    field = _field(io_header, root, 1)
    return struct.unpack_from("<q", io_header, field)[0] if field is not None else -1


@dataclass(frozen=True)
class Packet:
    """One packet of the file: the byte its header starts at, its stream id and payload size."""

    offset: int
    stream_id: int
    size: int

    @property
    def payload(self) -> int:
        return self.offset + PACKET_HEADER.size


@dataclass(frozen=True)
class FileLayout:
    """What the IOHeader says and the packet headers hold (see the module notes).

    ``compression`` is the IOHeader's ``CompressionType`` (field 0: NONE, LZ4, LZ4_HIGH,
    ZSTD, ZSTD_HIGH), the stream ids come from its info XML (field 2), ``packets`` are the
    complete packets, and ``incomplete`` describes a never finalised file.
    """

    compression: dv.CompressionType
    packets: tuple[Packet, ...]
    event_streams: frozenset[int]
    index: tuple[int, int] | None
    """Where the file's index starts and its size (a finalised file), else None."""
    incomplete: str | None

    @property
    def event_packets(self) -> tuple[Packet, ...]:
        return tuple(packet for packet in self.packets if packet.stream_id in self.event_streams)


def _streams(path: Path, info_xml: str | None) -> tuple[set[int], set[int]]:
    """Ids of every stream the IOHeader's info XML describes, and of the event stream dv reads
    (the ``EVTS`` stream named ``events``, else every ``EVTS`` one)."""
    try:
        root = ElementTree.fromstring(info_xml) if info_xml else None
    except ElementTree.ParseError as err:
        raise EventFormatError(path, f"corrupt file header: its stream description is not XML ({err})") from None
    streams = {}
    for node in root.iter("node") if root is not None else ():
        if node.get("name", "").isdigit():
            attrs = {attr.get("key"): attr.text for attr in node.findall("attr")}
            streams[int(node.get("name"))] = (attrs.get("typeIdentifier"), attrs.get("originalOutputName"))
    events = {stream for stream, kind in streams.items() if kind[0] == EVENTS_TYPE}
    named = {stream for stream in events if streams[stream][1] == EVENTS_STREAM}
    return set(streams), named or events


def read_layout(path: Path) -> FileLayout:
    """Walk the IOHeader and the packet headers of an aedat4 file (no payload is read).

    Raises :class:`EventFormatError` when the header chain is broken: a negative size, an
    unknown stream id, or (in a finalised file) a chain that does not end at the index.
    """
    with open(path, "rb") as f:
        f.seek(len(VERSION_LINE))
        try:
            (header_size,) = INT32.unpack(f.read(INT32.size))
            header = f.read(header_size)
            (root,) = struct.unpack_from("<I", header, 0)
            compression_field, info_field = _field(header, root, 0), _field(header, root, 2)
            compression = dv.CompressionType(
                struct.unpack_from("<i", header, compression_field)[0] if compression_field is not None else 0)
            info_xml = _string(header, info_field) if info_field is not None else None
            table = _data_table_position(header)
        except (struct.error, ValueError, OSError) as err:
            raise EventFormatError(path, f"file is truncated or corrupt: its header cannot be read ({err})") from None
        known, events = _streams(path, info_xml)
        file_size = os.fstat(f.fileno()).st_size
        if not 0 <= table < file_size and table != -1:
            raise EventFormatError(path, f"file is truncated or corrupt: its index is at byte {table} of {file_size}")
        end = table if table >= 0 else file_size
        pos = len(VERSION_LINE) + INT32.size + header_size
        packets = []
        while pos + PACKET_HEADER.size <= end:
            f.seek(pos)
            stream_id, size = PACKET_HEADER.unpack(f.read(PACKET_HEADER.size))
            if size < 0 or stream_id not in known:
                raise EventFormatError(path, f"corrupt packet header at byte {pos} (stream {stream_id}, {size} bytes)")
            if pos + PACKET_HEADER.size + size > end:
                break
            packets.append(Packet(pos, stream_id, size))
            pos += PACKET_HEADER.size + size
    if table >= 0:
        if pos != table:
            raise EventFormatError(path, f"corrupt packet header at byte {pos}: the packets do not end at the "
                                         f"file's index (byte {table})")
        incomplete = None
    elif pos + PACKET_HEADER.size <= end:
        missing = pos + PACKET_HEADER.size + size - end
        incomplete = (f"file is truncated: it was never finalised and ends inside the data packet at byte {pos} "
                      f"({missing} bytes missing); the events before that packet are read")
    elif pos < end:
        incomplete = (f"file is truncated: it was never finalised and ends inside a packet header at byte {pos}; "
                      "the events before it are read")
    else:
        incomplete = "file was never finalised (the recording program did not close it): it may end early"
    index = (table, file_size - table) if table >= 0 else None
    return FileLayout(compression, tuple(packets), frozenset(events), index, incomplete)


def _decompress(payload: bytes, compression: dv.CompressionType) -> bytes:
    """A packet's flatbuffer, decompressed as dv would; raises on corrupt data."""
    if compression in (dv.CompressionType.LZ4, dv.CompressionType.LZ4_HIGH):
        declared = lz4.frame.get_frame_info(payload)["content_size"]  # 0: not stated (what DV writes)
        if declared > MAX_PACKET_BYTES:  # the decoder would allocate it
            raise ValueError(f"the frame declares {declared} bytes")
        return lz4.frame.decompress(payload)
    if compression in (dv.CompressionType.ZSTD, dv.CompressionType.ZSTD_HIGH):
        declared = zstandard.get_frame_parameters(payload).content_size
        if not 0 <= declared <= MAX_PACKET_BYTES:  # dv needs the size in the frame and allocates it
            raise ValueError(f"the frame declares {declared} bytes")
        return zstandard.ZstdDecompressor().decompress(payload)
    return payload


def _size_prefixed(flatbuffer: bytes) -> bytes:
    """The body of a size-prefixed flatbuffer (what every packet and the index hold); raises
    when the prefix does not match."""
    (size,) = struct.unpack_from("<I", flatbuffer, 0)
    if size != len(flatbuffer) - 4:
        raise ValueError(f"its size prefix says {size} bytes, it holds {len(flatbuffer) - 4}")
    return flatbuffer[4:]


def event_count(flatbuffer: bytes) -> int:
    """Events in a decompressed, size-prefixed ``EventPacket`` flatbuffer; raises when its
    structure does not fit in it (field 0 of the root table is the vector of events)."""
    body = _size_prefixed(flatbuffer)
    (root,) = struct.unpack_from("<I", body, 0)
    if body[4:8] != EVENTS_TYPE.encode():
        raise ValueError(f"it is not an event packet (identifier {body[4:8]!r})")
    field = _field(body, root, 0)
    if field is None:
        return 0
    vector = field + struct.unpack_from("<I", body, field)[0]
    (count,) = struct.unpack_from("<I", body, vector)
    if vector + 4 + count * EVENT_STRUCT_BYTES > len(body):
        raise ValueError(f"its {count} events run past its {len(body)} bytes")
    return count


def _checked(path: Path, problem: str, check, payload: bytes, compression: dv.CompressionType):
    """``check`` of the decompressed ``payload``; :class:`EventFormatError` saying ``problem`` otherwise."""
    try:
        return check(_decompress(payload, compression))
    except (RuntimeError, ValueError, struct.error, zstandard.ZstdError, MemoryError) as err:
        raise EventFormatError(path, f"{problem} ({compression.name}: {err})") from None


def check_before_open(path: Path, layout: FileLayout) -> None:
    """Decompress what dv decompresses when it opens the file: the index of a finalised file,
    every packet of one never finalised (see the module notes)."""
    with open(path, "rb") as f:
        if layout.index is not None:
            start, size = layout.index
            f.seek(start)
            _checked(path, f"file is truncated or corrupt: its index at byte {start} does not decompress",
                     _size_prefixed, f.read(size), layout.compression)
            return
        for packet in layout.packets:
            f.seek(packet.payload)
            check = event_count if packet.stream_id in layout.event_streams else _size_prefixed
            kind = "event packet" if check is event_count else "packet"
            _checked(path, f"corrupt {kind} at byte {packet.offset}", check, f.read(packet.size), layout.compression)


class PacketGuard:
    """Checks the event packets of an aedat4 file just before dv reads them (see the module notes).

    dv 2.0.4 returns one packet per ``getNextEventBatch``: :meth:`before_read` checks packets
    until one holding events not yet returned is checked, :meth:`after_read` counts what dv
    returned. Should dv ever return more than was checked, the rest of the file is checked
    at once.
    """

    def __init__(self, path: Path, layout: FileLayout) -> None:
        self.path, self.layout = path, layout
        self._packets = layout.event_packets
        self._next = self._checked_events = self._read_events = 0
        self._check_all = False

    def before_read(self) -> None:
        """Check packets until the next one dv reads is checked; raises :class:`EventFormatError`."""
        packets = self._packets
        with open(self.path, "rb") as f:
            while self._next < len(packets) and (self._check_all or self._checked_events <= self._read_events):
                self._checked_events += self._check(f, packets[self._next])
                self._next += 1

    def after_read(self, events: int) -> None:
        """Count the events dv returned; check the whole rest of the file if dv read past the checked packets."""
        self._read_events += events
        if self._read_events > self._checked_events:
            self._check_all = True
            self.before_read()

    def _check(self, f, packet: Packet) -> int:
        f.seek(packet.payload)
        return _checked(self.path, f"corrupt event packet at byte {packet.offset}", event_count,
                        f.read(packet.size), self.layout.compression)


def _check_file(path: Path) -> None:
    """Plain errors for what dv would report with a C++ trace."""
    if not path.exists():
        raise EventFormatError(path, "file not found")
    if not path.is_file():
        raise EventFormatError(path, "not a file")
    try:
        with open(path, "rb") as f:
            start = f.read(len(VERSION_LINE))
    except OSError as err:
        raise EventFormatError(path, f"cannot read file: {err.strerror or err}") from err
    if not start:
        raise EventFormatError(path, "file is empty")
    if start == VERSION_LINE:
        return
    if start.startswith(AEDAT_MAGIC):
        version = start[len(AEDAT_MAGIC):].split(b"\r")[0].split(b"\n")[0].decode("ascii", "replace")
        raise EventFormatError(path, f"this is an AEDAT {version} file, not AEDAT 4.0 (AEDAT 2.0 and 3.1 files use "
                                     "the .aedat extension)")
    raise EventFormatError(path, "not an aedat4 file: it does not start with '#!AER-DAT4.0'")


class Aedat4Recording(EventSource):
    """An aedat4 recording's event stream (other streams, such as frames and IMU, are ignored).

    Opens eagerly, so format problems surface as :class:`EventFormatError` here.
    ``labels`` come from the sidecar ``<stem>_labels.csv`` when there is one;
    ``incomplete`` describes a file that was never finalised (see the module notes), else None.
    Iterating yields dv's packets as validated batches, from the start each time;
    one iteration at a time. Timestamp resets are handled as ``on_reset`` says
    (:class:`~livegesture.sources.resets.ResetHandler`); ``resets`` lists those of the last
    iteration (the labels are not moved: they are found only while reading).
    """

    def __init__(self, path: str | Path, *, on_reset: OnReset = "error") -> None:
        self.path = Path(path)
        self.name = str(self.path)
        _check_file(self.path)
        self.layout = read_layout(self.path)
        check_before_open(self.path, self.layout)
        try:
            reader = dv.io.MonoCameraRecording(str(self.path))
        except RuntimeError as err:
            message = dv_error_message(err)
            if any(marker in message for marker in _TRUNCATION_MARKERS):
                raise EventFormatError(self.path, f"file is truncated or corrupt (dv-processing: {message})") from None
            raise EventFormatError(self.path, f"cannot open aedat4 file: {message}") from None
        if not reader.isEventStreamAvailable():
            streams = ", ".join(reader.getStreamNames()) or "none"
            raise EventFormatError(self.path, f"recording has no event stream (streams: {streams})")
        resolution = reader.getEventResolution()
        if resolution is None:
            raise EventFormatError(self.path, "the event stream declares no sensor resolution")
        width, height = resolution
        self.sensor_size: SensorSize = (int(width), int(height))
        self.camera_name: str = reader.getCameraName()
        self.incomplete = self.layout.incomplete
        if self.incomplete:
            warnings.warn(f"{self.path}: {self.incomplete}", IncompleteRecordingWarning, stacklevel=2)
        labels_path = labels_path_for(self.path)
        self.labels = read_labels(labels_path) if labels_path.exists() else None
        self.on_reset = on_reset
        self.resets: tuple[TimestampReset, ...] = ()
        self._reader: dv.io.MonoCameraRecording | None = reader

    def __iter__(self) -> Iterator[np.ndarray]:
        reader = self._reader
        if reader is None:
            raise ValueError(f"{self.name}: recording is closed")
        reader.resetSequentialRead()
        validate = StreamValidator(self.sensor_size, self.name)
        guard = PacketGuard(self.path, self.layout)
        resets = ResetHandler(self.on_reset, self.name)
        while self._reader is reader:
            guard.before_read()
            try:
                store = reader.getNextEventBatch()
            except RuntimeError as err:
                raise EventFormatError(self.path, f"cannot read events: {dv_error_message(err)}") from None
            if store is None:
                return
            guard.after_read(len(store))
            batch = resets(from_event_store(store))
            self.resets = tuple(resets.resets)
            yield validate(batch)

    def close(self) -> None:
        self._reader = None


class Aedat4Writer:
    """Writes validated event batches to an event-only aedat4 file, incrementally.

    ``write`` may be called any number of times with time-ordered batches; ``close``
    (or leaving the ``with`` block) finalises the file: dv-processing writes the file
    index only when its writer object is destroyed. Batches are written as whole
    EventStores (never slices: dv's ``writeEvents(slice)`` writes the slice's whole
    underlying packets).
    """

    def __init__(self, path: str | Path, sensor_size: SensorSize, *, camera_name: str = DEFAULT_CAMERA_NAME) -> None:
        self.path = Path(path)
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        if min(self.sensor_size) <= 0:
            raise EventFormatError(self.path, f"invalid sensor size {sensor_size}")
        self.events_written = 0
        self._validate = StreamValidator(self.sensor_size, self.path)
        config = dv.io.MonoCameraWriter.EventOnlyConfig(camera_name, self.sensor_size)
        try:
            self._writer: dv.io.MonoCameraWriter | None = dv.io.MonoCameraWriter(str(self.path), config)
        except RuntimeError as err:
            raise EventFormatError(self.path, f"cannot create aedat4 file: {dv_error_message(err)}") from None

    def write(self, events: np.ndarray) -> None:
        """Validate and append one batch (empty batches are fine)."""
        if self._writer is None:
            raise ValueError(f"{self.path}: writer is closed")
        events = self._validate(events)
        for lo in range(0, events.size, WRITE_CHUNK_EVENTS):
            try:
                self._writer.writeEvents(to_event_store(events[lo:lo + WRITE_CHUNK_EVENTS]))
            except RuntimeError as err:
                raise EventFormatError(self.path, f"cannot write events: {dv_error_message(err)}") from None
        self.events_written += events.size

    def close(self) -> None:
        """Finalise the file (dv writes its index when the writer is destroyed); idempotent."""
        self._writer = None  # the only reference: the C++ destructor runs now

    def __enter__(self) -> Aedat4Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_aedat4(path: str | Path, events: np.ndarray, sensor_size: SensorSize, *,
                 camera_name: str = DEFAULT_CAMERA_NAME) -> None:
    """Write ``events`` to a finalised event-only aedat4 file."""
    with Aedat4Writer(path, sensor_size, camera_name=camera_name) as writer:
        writer.write(events)
