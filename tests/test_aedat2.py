"""AEDAT 2.0 (jAER) reader: hand-computed addresses, an independent per-record decoder written from
jAER's extractors, the writer's round trip and the edge cases of real files."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from livegesture.cli import main
from livegesture.events import EventFormatError, make_events
from livegesture.sources import open_source, read_recording
from livegesture.sources.aedat2 import (
    RECORD,
    Aedat2Recording,
    IncompleteRecordingWarning,
    read_aedat2,
    write_aedat2,
)
from livegesture.sources.labels import GestureSegment, labels_path_for, write_labels
from livegesture.sources.resets import SPLIT_GAP_US

DVS128_CLASS = "ch.unizh.ini.jaer.chip.retina.DVS128"
DAVIS240_CLASS = "eu.seebetter.ini.chips.davis.DAVIS240C"
DAVIS346_CLASS = "eu.seebetter.ini.chips.davis.Davis346B"


def header(chip: str | None = DVS128_CLASS, end_line: bool = True) -> bytes:
    lines = ["#!AER-DAT2.0", "# This is a raw AE data file - do not edit", "# Timestamps tick is 1 us"]
    if chip is not None:
        lines.append(f"# AEChip: {chip}")
    if end_line:
        lines.append("#End Of ASCII Header")
    return "".join(line + "\r\n" for line in lines).encode()


def records(pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack(">Ii", address, timestamp) for address, timestamp in pairs)


def reference_decode(data: bytes, start: int, chip: str) -> list[tuple[int, int, int, int]]:
    """jAER's extractors transcribed record by record (DVS128.Extractor.extractPacket,
    DavisBaseCamera.DavisEventExtractor), then y flipped to row 0 at the top: (t, x, y, p)."""
    if chip == "DVS128":
        size_x, size_y = 128, 128
    else:
        size_x, size_y = {"DAVIS240": (240, 180), "DAVIS346": (346, 260)}[chip]
    out = []
    for offset in range(start, len(data) - 7, 8):
        addr, ts = struct.unpack_from(">Ii", data, offset)
        if chip == "DVS128":
            if addr & (0x8000 | 0x80000000):
                continue
            polarity = (1 - addr) & 1
            x = size_x - 1 - ((addr & 0xFE) >> 1)
            y = (addr & 0x7F00) >> 8
        else:
            if addr & 0x80000000:  # APS or IMU sample
                continue
            if addr & (3 << 10) == 1 << 10:  # external input event
                continue
            polarity = 1 if addr & (1 << 11) else 0
            x = size_x - 1 - ((addr & (1023 << 12)) >> 12)
            y = (addr & (511 << 22)) >> 22
        out.append((ts, x, size_y - 1 - y, polarity))
    return out


def columns(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


def test_hand_computed_dvs128_addresses(tmp_path):
    path = tmp_path / "hand.aedat"
    # 0x0203: bit 0 = 1 (OFF), x bits = 1 -> x = 126, y bits = 2 -> jAER y 2 -> row 125 from the top
    # 0x7FFE: ON, x bits 127 -> x = 0, y bits 127 -> row 0; 0x8000: a sync (special) event
    path.write_bytes(header() + records([(0x0203, 10), (0x8000, 11), (0x7FFE, 12)]))
    data = read_aedat2(path)
    assert columns(data.events) == [(10, 126, 125, 0), (12, 0, 0, 1)]
    assert data.sensor_size == (128, 128) and data.skipped == {"special": 1} and data.chip == DVS128_CLASS


def test_hand_computed_davis_addresses(tmp_path):
    path = tmp_path / "davis.aedat"
    dvs_on = 5 << 22 | 7 << 12 | 1 << 11          # x = 239 - 7 = 232, jAER y 5 -> row 174, ON
    dvs_off = 179 << 22 | 239 << 12               # x = 0, jAER y 179 -> row 0, OFF
    aps = 0x80000000 | 3 << 22 | 4 << 12 | 512    # a frame sample
    imu = 0x80000C00                              # an IMU sample
    external = 1 << 10                            # an external input event
    path.write_bytes(header(DAVIS240_CLASS) + records([(dvs_on, 1), (aps, 2), (imu, 3), (external, 4), (dvs_off, 5)]))
    data = read_aedat2(path)
    assert columns(data.events) == [(1, 232, 174, 1), (5, 0, 0, 0)]
    assert data.sensor_size == (240, 180) and data.skipped == {"aps": 1, "imu": 1, "external": 1}


@pytest.mark.parametrize("chip, family, size", [(DVS128_CLASS, "DVS128", (128, 128)),
                                                (DAVIS240_CLASS, "DAVIS240", (240, 180)),
                                                (DAVIS346_CLASS, "DAVIS346", (346, 260))])
def test_random_records_match_the_reference_decoder(tmp_path, chip, family, size):
    rng = np.random.default_rng(7)
    n = 3000
    width, height = size
    if family == "DVS128":
        addresses = rng.integers(0, 1 << 15, n)
        addresses[rng.random(n) < 0.05] |= 0x8000  # special events
    else:
        x_raw, y_raw = rng.integers(0, width, n), rng.integers(0, height, n)
        addresses = y_raw << 22 | x_raw << 12 | rng.integers(0, 4, n) << 10 | rng.integers(0, 1024, n)
        addresses[rng.random(n) < 0.1] |= 0x80000000  # APS / IMU samples
    stamps = np.sort(rng.integers(0, 2**31 - 1, n))
    data = header(chip) + records(list(zip(addresses.tolist(), stamps.tolist())))
    path = tmp_path / "random.aedat"
    path.write_bytes(data)
    expected = reference_decode(data, len(header(chip)), family)
    decoded = read_aedat2(path)
    assert columns(decoded.events) == expected
    assert len(expected) + sum(decoded.skipped.values()) == n


def test_writer_round_trip_and_source(tmp_path):
    rng = np.random.default_rng(3)
    events = make_events(np.sort(rng.integers(0, 5_000_000, 20_001)), rng.integers(0, 346, 20_001),
                         rng.integers(0, 260, 20_001), rng.integers(0, 2, 20_001))
    path = tmp_path / "user01_led.aedat"
    write_aedat2(path, events, DAVIS346_CLASS)
    segments = [GestureSegment(2, 0, 1_000_000)]
    write_labels(labels_path_for(path), segments)
    recording = open_source(path)
    assert isinstance(recording, Aedat2Recording) and recording.sensor_size == (346, 260)
    assert recording.labels == segments
    assert np.array_equal(np.concatenate(list(recording)), events)
    assert np.array_equal(read_recording(path).events, events)


def test_header_only_reads_as_zero_events(tmp_path):
    path = tmp_path / "empty.aedat"
    path.write_bytes(header())
    data = read_aedat2(path)
    assert len(data.events) == 0 and data.trailing_bytes == 0 and data.skipped == {"special": 0}


def test_header_without_end_line_ends_at_the_first_binary_byte(tmp_path):
    path = tmp_path / "old.aedat"
    path.write_bytes(header(end_line=False) + records([(0x0102, 5)]))
    assert columns(read_aedat2(path).events) == [(5, 126, 126, 1)]


def test_odd_trailing_bytes_are_counted_and_warned(tmp_path):
    path = tmp_path / "cut.aedat"
    path.write_bytes(header() + records([(0x0102, 5), (0x0204, 6)]) + b"\x00\x01\x02")
    with pytest.warns(IncompleteRecordingWarning, match="3 bytes after the last whole record"):
        data = read_aedat2(path)
    assert len(data.events) == 2 and data.trailing_bytes == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Aedat2Recording(path).trailing_bytes == 3


def test_timestamp_wrap_is_unwrapped(tmp_path):
    path = tmp_path / "wrap.aedat"
    path.write_bytes(header() + records([(0x0102, 2**31 - 10), (0x0102, -2**31 + 5)]))
    assert read_aedat2(path).events["t"].tolist() == [2**31 - 10, 2**31 + 5]


@pytest.mark.parametrize("content, problem", [
    (b"#!AER-DAT3.1\r\n#!END-HEADER\r\n", "not an AEDAT 2.0 file"),
    (header(chip=None) + records([(0, 1)]), "no '# AEChip:' line"),
    (header("net.sf.jaer.chip.Cochlea") + records([(0, 1)]), "chip 'net.sf.jaer.chip.Cochlea' cannot be decoded"),
    (header() + records([(0x0102, 5), (0x0102, 2)]), "timestamp reset at event 1: time goes from 5 us back to 2 us"),
    (header(DAVIS240_CLASS) + records([(200 << 22, 1)]), "1 DAVIS240 events lie outside the 240x180 sensor"),
    (b"", "file is empty"),
])
def test_bad_files_give_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(EventFormatError, match=problem) as info:
        read_aedat2(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_cli_info_reports_a_bad_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.aedat"
    path.write_bytes(header("net.sf.jaer.chip.Cochlea"))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot be decoded" in err


def test_resets_rebase_and_split(tmp_path):
    path = tmp_path / "reset.aedat"
    path.write_bytes(header() + records([(0x0102, 100), (0x0102, 200), (0x0102, 10), (0x0102, 30)]))
    rebased = read_aedat2(path, on_reset="rebase")
    assert rebased.events["t"].tolist() == [100, 200, 200, 220]
    assert [(r.index, r.before_us, r.after_us) for r in rebased.resets] == [(2, 200, 10)]
    split = read_aedat2(path, on_reset="split")
    assert split.events["t"].tolist() == [100, 200, 200 + SPLIT_GAP_US, 220 + SPLIT_GAP_US]


def test_a_file_rewritten_while_parsed_does_not_kill_the_process(tmp_path):
    """A mapped file truncated under the reader killed it with SIGBUS; the reader now owns a copy."""
    from test_aedat3 import events_read_while_truncated

    n = 200_000
    path = tmp_path / "rewritten.aedat"
    write_aedat2(path, make_events(np.arange(n), np.arange(n) % 128, np.zeros(n), np.ones(n)))
    assert events_read_while_truncated(path, "aedat2", "_split_header", "read_aedat2") == n


def test_write_refuses_an_unknown_chip(tmp_path):
    with pytest.raises(EventFormatError, match="cannot be decoded"):
        write_aedat2(tmp_path / "x.aedat", np.zeros(0, RECORD), "some.Chip")
