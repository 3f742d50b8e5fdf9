"""``livegesture info``: classes counted from 1 as in the label files, the geometry the network sees,
timestamp resets with their place, AEDAT 2.0 details."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.cli import main
from livegesture.events import make_events
from livegesture.sources.aedat3 import write_aedat3
from livegesture.sources.labels import GestureSegment, labels_path_for, write_labels


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(tmp_path / "user-config.toml"))


def events(times, width=128, height=128) -> np.ndarray:
    n = len(times)
    return make_events(times, np.arange(n) % width, np.arange(n) % height, np.arange(n) % 2)


def test_labels_are_numbered_as_in_the_label_file(tmp_path, capsys):
    path = tmp_path / "user01_led.aedat"
    write_aedat3(path, events(np.arange(0, 1_000_000, 1000)))
    write_labels(labels_path_for(path), [GestureSegment(0, 0, 400_000), GestureSegment(10, 500_000, 900_000)])
    first_column = [line.split(",")[0] for line in labels_path_for(path).read_text().splitlines()[1:]]
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert first_column == ["1", "11"]
    assert " 1 hand clapping" in out and "11 other gestures" in out
    assert "network     sees the whole 128x128 sensor, as trained" in out


def test_a_davis346_jaer_file_with_a_reset(tmp_path, capsys):
    path = tmp_path / "davis.aedat"
    times = [*range(1000, 6000, 1000), *range(10, 40, 10)]  # a reset after 5 events
    raw = events(times, 346, 260)
    # jAER's DAVIS layout: x mirrored in bits 12-21, y upwards in bits 22-30, bit 11 = ON
    addresses = ((345 - raw["x"].astype(np.uint32)) << 12 | (259 - raw["y"].astype(np.uint32)) << 22
                 | raw["p"].astype(np.uint32) << 11)
    records = np.empty(len(raw), [("address", ">u4"), ("timestamp", ">i4")])
    records["address"], records["timestamp"] = addresses, raw["t"]
    path.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n" + records.tobytes())
    assert main(["info", str(path)]) == 2
    assert "timestamp reset at event 5: time goes from 5,000 us back to 10 us" in capsys.readouterr().err
    assert main(["info", str(path), "--on-reset", "split"]) == 0
    out = capsys.readouterr().out
    assert "346 x 260 (eu.seebetter.ini.chips.davis.Davis346B)" in out
    assert "sees 260x260 at (43, 0) of the 346x260 sensor, scaled 260:128" in out
    assert "part 1      1,000 .. 5,000 us" in out and "part 2      1,005,000 .. 1,005,020 us" in out
    assert "reset       at event 5: 5,000 us -> 10 us, split" in out
    assert main(["info", str(path), "--on-reset", "rebase", "--roi", "300", "0", "100"]) == 2
    err = capsys.readouterr().err
    assert "does not fit the 346x260 sensor" in err and err.count("\n") == 1
