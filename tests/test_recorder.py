"""The recorder: events to aedat4 and marked gestures to a DVS Gesture label file, round trip."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from livegesture.events import LivegestureError, make_events
from livegesture.pipeline.recorder import Recorder
from livegesture.sources import open_source
from livegesture.sources.labels import GestureSegment

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_session.aedat4"
SENSOR = (128, 128)


def demo_batches(limit_events: int) -> list[np.ndarray]:
    """The first batches of the demo recording, about ``limit_events`` events."""
    batches, total = [], 0
    with open_source(DEMO) as source:
        for batch in source:
            batches.append(batch)
            total += batch.size
            if total >= limit_events:
                break
    return batches


def read_back(path: Path) -> tuple[np.ndarray, list[GestureSegment] | None]:
    with open_source(path) as source:
        return np.concatenate(list(source)), source.labels


def test_round_trip_of_events_and_marked_gestures(tmp_path):
    batches = demo_batches(60_000)
    path = tmp_path / "mine.aedat4"
    expected = []
    with Recorder(path, SENSOR) as recorder:
        for i, batch in enumerate(batches):
            recorder.write(batch)
            if i == 2:
                recorder.begin(4)  # at the latest event
                expected_start = int(batch["t"][-1])
            if i == len(batches) // 2:
                recorder.begin(10, t_us=int(batch["t"][0]))  # ends the running gesture there
                expected.append(GestureSegment(4, expected_start, int(batch["t"][0])))
                second_start = int(batch["t"][0])
        assert recorder.running_label == 10
    # close() ended the running gesture at the last event written
    expected.append(GestureSegment(10, second_start, int(batches[-1]["t"][-1])))
    events, labels = read_back(path)
    np.testing.assert_array_equal(events, np.concatenate(batches))
    assert recorder.closed and recorder.events_written == len(events)  # the count outlives the file's writer
    assert labels == expected
    assert (tmp_path / "mine_labels.csv").read_text().splitlines()[1:] == [
        f"5,{expected[0].start_us},{expected[0].end_us}", f"11,{expected[1].start_us},{expected[1].end_us}"]


def test_end_stops_marking_and_empty_gestures_are_dropped(tmp_path):
    events = make_events([10, 20, 30, 40], [1, 2, 3, 4], [0, 0, 0, 0], [1, 0, 1, 0])
    recorder = Recorder(tmp_path / "r.aedat4", SENSOR)
    recorder.begin(0)  # before any event: t = 0
    recorder.write(events[:2])
    recorder.end()  # at 20
    recorder.end()  # nothing running: no-op
    recorder.begin(1)
    recorder.begin(2)  # same instant: the empty gesture 1 is dropped
    recorder.write(events[2:])
    recorder.end(35)
    recorder.close()
    recorder.close()  # idempotent
    recorder.write(events)  # ignored after close
    assert recorder.segments == [GestureSegment(0, 0, 20), GestureSegment(2, 20, 35)]
    read_events, labels = read_back(tmp_path / "r.aedat4")
    np.testing.assert_array_equal(read_events, events)
    assert labels == recorder.segments


def test_a_recording_without_marks_has_an_empty_label_file(tmp_path):
    with Recorder(tmp_path / "quiet.aedat4", SENSOR) as recorder:
        recorder.write(make_events([5], [1], [1], [1]))
    events, labels = read_back(tmp_path / "quiet.aedat4")
    assert events.size == 1 and labels == []


def test_a_class_outside_the_dataset_is_refused(tmp_path):
    with Recorder(tmp_path / "r.aedat4", SENSOR) as recorder:
        with pytest.raises(LivegestureError, match="1..11, got 12"):
            recorder.begin(11)
        assert recorder.running_label is None


def test_marks_from_another_thread_while_writing(tmp_path):
    """A GUI thread marks while the source thread writes: every event and every mark arrives."""
    batches = demo_batches(30_000)
    recorder = Recorder(tmp_path / "threads.aedat4", SENSOR)
    written = threading.Event()

    def write_all() -> None:
        for batch in batches:
            recorder.write(batch)
        written.set()

    writer = threading.Thread(target=write_all)
    writer.start()
    for label in range(3):
        recorder.begin(label)
    writer.join()
    recorder.end(int(batches[-1]["t"][-1]) + 1)
    recorder.close()
    events, labels = read_back(tmp_path / "threads.aedat4")
    assert written.is_set() and events.size == sum(b.size for b in batches)
    # marks come in order, each ends where the next begins, the last at the explicit end
    assert [s.label for s in labels] == sorted(s.label for s in labels)
    assert labels[-1].label == 2 and labels[-1].end_us == int(batches[-1]["t"][-1]) + 1
    assert all(a.end_us == b.start_us for a, b in zip(labels, labels[1:]))


def test_an_unwritable_path_is_a_clear_error(tmp_path):
    with pytest.raises(LivegestureError, match="nowhere"):
        Recorder(tmp_path / "nowhere" / "r.aedat4", SENSOR)
