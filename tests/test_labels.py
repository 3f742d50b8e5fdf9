"""DVS Gesture label files and the per-gesture cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livegesture.events import EventFormatError, make_events
from livegesture.sources.labels import (
    CLASS_NAMES,
    GestureSegment,
    cut_segments,
    labels_path_for,
    read_labels,
    write_labels,
)

SHARED_LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dvsgesture_user01_natural_labels.csv"


def test_real_label_file_reads_with_zero_based_classes():
    if not SHARED_LABELS.exists():
        pytest.skip("../shared/data is not present")
    segments = read_labels(SHARED_LABELS)
    rows = np.loadtxt(SHARED_LABELS, dtype=np.int64, delimiter=",", skiprows=1)  # as SpikingJelly reads it
    assert len(segments) == len(rows) == 12
    assert [(s.label, s.start_us, s.end_us) for s in segments] == [(c - 1, a, b) for c, a, b in rows]
    assert segments[0].name == "hand clapping" and segments[-1].name == "other gestures"
    assert [s.label for s in segments].count(7) == 2  # arm roll occurs twice in this real file


def test_round_trip_and_sidecar_name(tmp_path):
    segments = [GestureSegment(0, 10, 20), GestureSegment(10, 25, 1_000_000_000_000)]
    path = labels_path_for(tmp_path / "user03_led.aedat")
    assert path.name == "user03_led_labels.csv"
    write_labels(path, segments)
    assert path.read_text().splitlines() == ["class,startTime_usec,endTime_usec", "1,10,20", "11,25,1000000000000"]
    assert read_labels(path) == segments
    assert len(CLASS_NAMES) == 11


@pytest.mark.parametrize("content, problem", [
    ("", "label file is empty"),
    ("a,b,c\n1,2,3\n", "label file must start with the header"),
    ("class,startTime_usec,endTime_usec\n1,2\n", "row 1: expected three integers"),
    ("class,startTime_usec,endTime_usec\n12,2,3\n", "row 1: class 12 outside 1..11"),
    ("class,startTime_usec,endTime_usec\n0,2,3\n", "row 1: class 0 outside 1..11"),
    ("class,startTime_usec,endTime_usec\n1,5,5\n", r"row 1: segment \[5, 5\) is empty"),
    ("class,startTime_usec,endTime_usec\n1,2,3\n\n4,5,9223372036854775808\n",
     "row 2: time 9223372036854775808 us is beyond the int64 range"),
    (b"class,startTime_usec,endTime_usec\n1,2,3 \xe9t\xe9\n", r"label file is not UTF-8 text \(byte 40: 0xe9\)"),  # 34 header bytes + "1,2,3 "
])
def test_bad_label_files_name_file_and_row(tmp_path, content, problem):
    path = tmp_path / "bad_labels.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(EventFormatError, match=f"bad_labels.csv: {problem}"):
        read_labels(path)
    with pytest.raises(EventFormatError, match="cannot read label file"):
        read_labels(tmp_path / "missing_labels.csv")


def test_cut_matches_spikingjelly_mask_including_overlaps():
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, 1000, 500))
    events = make_events(t, rng.integers(0, 128, 500), rng.integers(0, 128, 500), rng.integers(0, 2, 500))
    segments = [GestureSegment(0, 100, 300), GestureSegment(1, 250, 600), GestureSegment(2, 990, 5000),
                GestureSegment(3, 2000, 3000)]
    for segment, cut in zip(segments, cut_segments(events, segments)):
        mask = np.logical_and(events["t"] >= segment.start_us, events["t"] < segment.end_us)
        np.testing.assert_array_equal(cut, events[mask])


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "excel_labels.csv"
    path.write_bytes(b"\xef\xbb\xbfclass,startTime_usec,endTime_usec\r\n3,100,200\r\n")
    assert read_labels(path) == [GestureSegment(2, 100, 200)]


def test_rows_are_numbered_as_in_the_skip_table(tmp_path):
    """An error in a label file and a gesture the evaluation skips name the same row."""
    from rich.console import Console

    from livegesture.evaluate.recordings import Skipped
    from livegesture.evaluate.report import skipped_table

    path = tmp_path / "rows_labels.csv"
    path.write_text("class,startTime_usec,endTime_usec\n1,0,10\n\n2,10,20\n12,20,30\n")
    with pytest.raises(EventFormatError, match="row 3: class 12"):
        read_labels(path)
    console = Console(width=200, record=True)
    console.print(skipped_table([Skipped("rows.aedat", "why", segment=2)]))  # the third label, 0-based
    assert "rows.aedat │ 3   │ why" in console.export_text()
