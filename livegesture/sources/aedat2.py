"""AEDAT 2.0 recordings (jAER's format, most DVS128 recordings in the wild): a vectorised reader
and, for tests and conversions, a writer.

Layout, as jAER's ``net.sf.jaer.eventio.AEFileInputStream`` reads it: ASCII header lines that
start with ``#`` and end in CRLF, the first ``#!AER-DAT2.0``; the header ends at the first line
that does not start with ``#`` or after the line ``#End Of ASCII Header``. One line,
``# AEChip: <Java class>``, names the chip whose extractor decodes the addresses. Then 8-byte
big-endian records: int32 address, int32 timestamp (us). jAER's int32 timestamps wrap every
2**32 us (71 min); a drop of more than 2**31 us is taken as such a wrap and unwrapped.

Address layouts, as jAER's extractors decode them (verified against jAER's source):

- **DVS128** (``ch.unizh.ini.jaer.chip.retina.DVS128.Extractor``; eDVS128 cameras too: jAER's
  ``eDVS128_HardwareInterface`` builds the same addresses for this chip class): a record with
  ``address & 0x8000`` (sync) or ``address & 0x80000000`` set is a special event;
  otherwise ``x = 127 - ((a >> 1) & 0x7F)``, ``y = (a >> 8) & 0x7F``, bit 0 = 1 for OFF.
- **DAVIS** (``eu.seebetter.ini.chips.DavisChip`` constants, ``DavisBaseCamera.DavisEventExtractor``):
  bit 31 set is an APS (frame) sample, or an IMU sample when bits 10-11 are also set; bits
  10-11 = ``01`` is an external input event; otherwise a DVS event with
  ``x = W - 1 - ((a >> 12) & 0x3FF)``, ``y = (a >> 22) & 0x1FF``, bit 11 = 1 for ON.

Only DVS events are kept; the others are counted by kind in :attr:`Aedat2Data.skipped`.

**Orientation rule.** jAER's y axis points up (row 0 is drawn at the bottom); DV, libcaer and the
DVS Gesture files (recorded with cAER) put row 0 at the top: libcaer's DVS128 driver decodes the
same USB address as ``x = 127 - bits 1-7``, ``y = 127 - bits 8-14`` ("to convert to CG format").
So this reader returns jAER's ``x`` and ``H - 1 -`` jAER's ``y``: a jAER recording reaches the
network the same way up as the training data.

Written by hand because no maintained library reads AEDAT 2.0 (dv-processing reads aedat4 only);
the records are decoded with whole-array numpy operations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.events import DVS128_SIZE, EVENT_DTYPE, EventFormatError, SensorSize, validate_events
from livegesture.sources.aedat3 import read_whole
from livegesture.sources.base import InMemoryRecording
from livegesture.sources.resets import OnReset, TimestampReset, resolve_resets

VERSION_LINE = b"#!AER-DAT2.0"
END_OF_HEADER_LINE = b"#end of ascii header"
"""jAER's optional last header line (compared case-insensitively, as jAER does)."""
CHIP_PREFIX = "# AEChip:"
RECORD = np.dtype([("address", ">u4"), ("timestamp", ">i4")])
TIMESTAMP_WRAP = 1 << 32
DEFAULT_BATCH_EVENTS = 10_000

DVS128_SPECIAL_MASK = 0x8000_8000  # sync bit 15, special bit 31
DVS128_COORDINATE_MASK = 0x7F
DVS128_X_SHIFT, DVS128_Y_SHIFT = 1, 8
DVS128_OFF_BIT = 1

DAVIS_APS_BIT = 0x8000_0000
DAVIS_TYPE_MASK = 0xC00  # bits 10-11
DAVIS_EXTERNAL = 0x400
DAVIS_IMU = 0xC00
DAVIS_X_SHIFT, DAVIS_X_MASK = 12, 0x3FF
DAVIS_Y_SHIFT, DAVIS_Y_MASK = 22, 0x1FF
DAVIS_POLARITY_SHIFT = 11


class IncompleteRecordingWarning(UserWarning):
    """An AEDAT 2.0 file ends inside a record: the recorder was probably stopped abruptly."""


Decoded = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]
"""Mask of the DVS records, their x, y (jAER's, y up) and polarity, and the others counted by kind."""


def _decode_dvs128(address: np.ndarray, sensor_size: SensorSize) -> Decoded:
    special = (address & DVS128_SPECIAL_MASK) != 0
    dvs = address[~special]
    x = (sensor_size[0] - 1) - ((dvs >> DVS128_X_SHIFT) & DVS128_COORDINATE_MASK).astype(np.int64)
    y = ((dvs >> DVS128_Y_SHIFT) & DVS128_COORDINATE_MASK).astype(np.int64)
    on = 1 - (dvs & DVS128_OFF_BIT).astype(np.uint8)
    return ~special, x, y, on, {"special": int(np.count_nonzero(special))}


def _decode_davis(address: np.ndarray, sensor_size: SensorSize) -> Decoded:
    sample = (address & DAVIS_APS_BIT) != 0
    kind = address & DAVIS_TYPE_MASK
    imu = sample & (kind == DAVIS_IMU)
    external = ~sample & (kind == DAVIS_EXTERNAL)
    keep = ~sample & ~external
    dvs = address[keep]
    x = (sensor_size[0] - 1) - ((dvs >> DAVIS_X_SHIFT) & DAVIS_X_MASK).astype(np.int64)
    y = ((dvs >> DAVIS_Y_SHIFT) & DAVIS_Y_MASK).astype(np.int64)
    on = ((dvs >> DAVIS_POLARITY_SHIFT) & 1).astype(np.uint8)
    n_imu = int(np.count_nonzero(imu))
    return keep, x, y, on, {"aps": int(np.count_nonzero(sample)) - n_imu, "imu": n_imu,
                            "external": int(np.count_nonzero(external))}


@dataclass(frozen=True)
class Chip:
    """A chip this reader decodes: its family, sensor size and address decoder."""

    family: str
    sensor_size: SensorSize
    decode: Callable[[np.ndarray, SensorSize], Decoded]


CHIPS: dict[str, Chip] = {
    "dvs128": Chip("DVS128", DVS128_SIZE, _decode_dvs128),
    "davis240": Chip("DAVIS240", (240, 180), _decode_davis),
    "davis346": Chip("DAVIS346", (346, 260), _decode_davis),
    "davis640": Chip("DAVIS640", (640, 480), _decode_davis),
}
"""By the lower-case prefix of the chip class's simple name (``DVS128``, ``DAVIS240C``, ``Davis346B``...)."""


def chip_for(path: Path, class_name: str | None) -> Chip:
    """The chip of an ``# AEChip:`` class name; :class:`EventFormatError` for one this reader cannot decode."""
    if class_name is None:
        raise EventFormatError(path, "AEDAT 2.0 header has no '# AEChip:' line: the chip, and so the address "
                                     "layout, is unknown")
    simple = class_name.rsplit(".", 1)[-1].lower()
    for prefix, chip in CHIPS.items():
        if simple.startswith(prefix):
            return chip
    known = ", ".join(chip.family for chip in CHIPS.values())
    raise EventFormatError(path, f"AEDAT 2.0 chip {class_name!r} cannot be decoded; known chips: {known}")


@dataclass(frozen=True)
class Aedat2Data:
    """One decoded recording: validated DVS ``events`` (y down, see the module docstring),
    ``sensor_size``, the ``chip`` class named in the header, the records ``skipped`` by kind
    (``special``; ``aps``, ``imu``, ``external``), ``trailing_bytes`` after the last whole record,
    the timestamp ``resets`` found (and handled as ``on_reset`` says) and the ``header`` lines."""

    events: np.ndarray
    sensor_size: SensorSize
    chip: str
    skipped: dict[str, int]
    trailing_bytes: int
    resets: tuple[TimestampReset, ...]
    header: tuple[str, ...]


def _split_header(path: Path, buf: bytes | bytearray) -> tuple[tuple[str, ...], int]:
    """The header lines (without line endings) and the byte offset where records start."""
    first = bytes(buf[:len(VERSION_LINE) + 2]).rstrip(b"\r\n")
    if first != VERSION_LINE:
        raise EventFormatError(path, f"not an AEDAT 2.0 file: it starts with {first[:16]!r}, expected "
                                     f"{VERSION_LINE.decode()!r}")
    lines, pos = [], 0
    while pos < len(buf) and buf[pos:pos + 1] == b"#":
        end = buf.find(b"\n", pos)
        if end < 0:
            raise EventFormatError(path, f"header line at byte {pos} has no line end")
        line = bytes(buf[pos:end]).rstrip(b"\r")
        lines.append(line.decode("ascii", "replace"))
        pos = end + 1
        if line.lower() == END_OF_HEADER_LINE:
            break
    return tuple(lines), pos


def chip_class(header: tuple[str, ...]) -> str | None:
    """The Java class named by the header's ``# AEChip:`` line, or None."""
    for line in header:
        if line.startswith(CHIP_PREFIX):
            return line[len(CHIP_PREFIX):].strip() or None
    return None


def _unwrap(timestamps: np.ndarray) -> np.ndarray:
    """int32 timestamps as int64, continued across jAER's 2**32 us wraps."""
    t = timestamps.astype(np.int64)
    wrapped = np.diff(t, prepend=t[:1]) < -(TIMESTAMP_WRAP // 2)
    if wrapped.any():
        t += np.cumsum(wrapped) * TIMESTAMP_WRAP
    return t


def read_aedat2(path: str | Path, on_reset: OnReset = "error") -> Aedat2Data:
    """Read and validate an AEDAT 2.0 file; every problem raises :class:`EventFormatError`.

    A header without records reads as zero events; bytes after the last whole record are
    ignored, counted and warned about (:class:`IncompleteRecordingWarning`). Timestamps that
    go backwards are handled as ``on_reset`` says (:func:`~livegesture.sources.resets.resolve_resets`).
    The file is read into memory, not mapped (:func:`~livegesture.sources.aedat3.read_whole`): a file
    rewritten while it is read raises "file changed while reading" instead of a SIGBUS.
    """
    path = Path(path)
    buf = read_whole(path)
    header, pos = _split_header(path, buf)
    chip = chip_for(path, chip_class(header))
    count, trailing = divmod(len(buf) - pos, RECORD.itemsize)
    records = np.frombuffer(buf, RECORD, count=count, offset=pos)
    keep, x, y, on, skipped = chip.decode(records["address"], chip.sensor_size)
    timestamps = _unwrap(records["timestamp"])[keep]
    width, height = chip.sensor_size
    outside = (x < 0) | (x >= width) | (y >= height)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise EventFormatError(path, f"{int(outside.sum())} {chip.family} events lie outside the {width}x{height} "
                                     f"sensor, the first at jAER x={x[i]}, y={y[i]}")
    events = np.empty(len(timestamps), dtype=EVENT_DTYPE)
    events["t"] = timestamps
    events["x"] = x
    events["y"] = (height - 1) - y
    events["p"] = on
    if trailing:
        warnings.warn(f"{path}: {trailing} bytes after the last whole record (of {RECORD.itemsize} bytes): the "
                      f"recording was probably cut short", IncompleteRecordingWarning, stacklevel=2)
    events, resets = resolve_resets(events, on_reset, path)
    events, _ = validate_events(events, chip.sensor_size, path)
    return Aedat2Data(events, chip.sensor_size, chip_class(header) or "", skipped, trailing, resets, header)


def _encode(events: np.ndarray, chip: Chip) -> np.ndarray:
    """Addresses of DVS events as ``chip``'s extractor reads them (the inverse of its decoder)."""
    width, height = chip.sensor_size
    x = (width - 1 - events["x"].astype(np.uint32))
    y = (height - 1 - events["y"].astype(np.uint32))
    p = events["p"].astype(np.uint32)
    if chip.decode is _decode_dvs128:
        return x << DVS128_X_SHIFT | y << DVS128_Y_SHIFT | (1 - p)
    return x << DAVIS_X_SHIFT | y << DAVIS_Y_SHIFT | p << DAVIS_POLARITY_SHIFT


def write_aedat2(path: str | Path, events: np.ndarray, chip_class_name: str = "ch.unizh.ini.jaer.chip.retina.DVS128",
                 *, extra_records: np.ndarray | None = None) -> None:
    """Write DVS events as jAER records them: its header lines, then one big-endian record per
    event, addresses in the chip's layout (timestamps must fit int32).

    ``extra_records`` (an array of :data:`RECORD`, e.g. special or APS records) are merged in
    by timestamp, after the events of equal time; for tests of the reader.
    """
    path = Path(path)
    chip = chip_for(path, chip_class_name)
    events, _ = validate_events(events, chip.sensor_size, path)
    records = np.empty(len(events), dtype=RECORD)
    records["address"] = _encode(events, chip)
    records["timestamp"] = events["t"]
    if extra_records is not None:
        records = np.concatenate([records, extra_records.astype(RECORD)])
        records = records[np.argsort(records["timestamp"], kind="stable")]
    header = [VERSION_LINE.decode(), "# This is a raw AE data file - do not edit",
              "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
              "# Timestamps tick is 1 us", f"{CHIP_PREFIX} {chip_class_name}", "#End Of ASCII Header"]
    with open(path, "wb") as f:
        f.write("".join(line + "\r\n" for line in header).encode("ascii"))
        f.write(records.tobytes())


class Aedat2Recording(InMemoryRecording):
    """An AEDAT 2.0 file as an event source, read whole when opened (see :class:`InMemoryRecording`).

    ``chip``, ``skipped``, ``trailing_bytes``, ``resets`` and ``header`` are those of :func:`read_aedat2`.
    """

    def __init__(self, path: str | Path, *, batch_events: int = DEFAULT_BATCH_EVENTS,
                 on_reset: OnReset = "error") -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteRecordingWarning)  # reported as trailing_bytes instead
            data = read_aedat2(path, on_reset)
        super().__init__(path, data.events, data.sensor_size, data.resets, batch_events)
        self.chip = data.chip
        self.skipped = data.skipped
        self.trailing_bytes = data.trailing_bytes
        self.header = data.header
