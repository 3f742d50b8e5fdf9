"""Synthetic recordings in the real formats: IBM's DVS Gesture folder (AEDAT 3.1) and aedat4 sessions.

The files must read back identically with the project's readers and with SpikingJelly's own
``load_aedat_v3`` (the reader the deployed nets were trained through), carry labels in IBM's
format, split users disjointly, and be byte-for-byte reproducible from the seed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from livegesture.cli import main
from livegesture.sources.aedat3 import read_aedat3
from livegesture.sources.dataset import DvsGestureFolder
from livegesture.sources.labels import NUM_CLASSES, read_labels
from livegesture.synth.generate import ClipJob, SynthSettings, generate_clip
from livegesture.synth.gestures import CLAP, DVSGESTURE_TIMING, LEFT_WAVE, RIGHT_CW, TimingModel
from livegesture.synth.writers import SESSION_START_US, make_session, write_dataset, write_recording

SEED = 3
TINY = SynthSettings(timing=TimingModel(gesture_seconds=(0.4, 0.5)))
SHARED_LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dvsgesture_user01_natural_labels.csv"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two users under lab light, written by the command line with two workers."""
    root = tmp_path_factory.mktemp("synth") / "DvsGesture"
    assert main(["synth", "dataset", str(root), "--users", "2", "--lightings", "lab", "--test-users", "1",
                 "--seed", str(SEED), "--timing", "short", "--gesture-seconds", "0.4", "0.5", "--workers", "2",
                 "--quiet"]) == 0
    return root


def test_dataset_has_ibm_layout_and_disjoint_splits(dataset):
    names = sorted(p.name for p in dataset.iterdir())
    assert names == ["trials_to_test.txt", "trials_to_train.txt", "user01_lab.aedat", "user01_lab_labels.csv",
                     "user02_lab.aedat", "user02_lab_labels.csv"]
    assert (dataset / "trials_to_train.txt").read_text() == "user01_lab.aedat\n"
    assert (dataset / "trials_to_test.txt").read_text() == "user02_lab.aedat\n"
    folder = DvsGestureFolder(dataset.parent)  # found in its DvsGesture/ subfolder, as IBM ships it
    train, test = list(folder.samples("train")), list(folder.samples("test"))
    assert sorted(s.label for s in train) == sorted(s.label for s in test) == list(range(NUM_CLASSES))
    assert all(len(s.events) > 5_000 for s in train + test)


def test_label_files_are_in_ibm_format(dataset):
    text = (dataset / "user01_lab_labels.csv").read_text()
    header, *rows = text.splitlines()
    if SHARED_LABELS.exists():  # the header of a real DVS Gesture label file
        assert header == SHARED_LABELS.read_text().splitlines()[0]
    table = np.array([[int(v) for v in row.split(",")] for row in rows])
    assert sorted(table[:, 0]) == list(range(1, NUM_CLASSES + 1))  # 1-based classes
    assert np.all(table[:, 2] > table[:, 1]) and np.all(table[1:, 1] > table[:-1, 2])  # gaps between gestures
    assert [s.label + 1 for s in read_labels(dataset / "user01_lab_labels.csv")] == table[:, 0].tolist()


def test_aedat3_reads_back_the_generated_events(dataset):
    data = read_aedat3(dataset / "user01_lab.aedat")
    assert data.sensor_size == (128, 128) and data.invalid_events == 0
    first = read_labels(dataset / "user01_lab_labels.csv")[0]
    clip = generate_clip(ClipJob(SEED, 1, "lab", first.label, 0, TINY))
    expected = clip.events.copy()
    expected["t"] += SESSION_START_US
    assert np.array_equal(data.events[:len(expected)], expected)
    assert first.start_us == SESSION_START_US + clip.gesture_start_us


def test_aedat3_matches_spikingjelly_load_aedat_v3(dataset):
    pytest.importorskip("spikingjelly")
    from livegesture.reference import spikingjelly_function

    path = dataset / "user02_lab.aedat"
    reference = spikingjelly_function("load_aedat_v3")(str(path))
    events = read_aedat3(path).events
    for key in ("t", "x", "y", "p"):
        assert np.array_equal(reference[key], events[key]), key


def test_same_seed_gives_the_same_bytes_whatever_the_workers(dataset, tmp_path):
    """User 1's recording alone, made by one process, is the same file as in the two-user set."""
    write_dataset(tmp_path, 1, ["lab"], 0, SEED, workers=1, settings=TINY)
    for name in ("user01_lab.aedat", "user01_lab_labels.csv"):
        assert (tmp_path / name).read_bytes() == (dataset / name).read_bytes(), name


def test_session_is_continuous_with_pauses():
    events, segments = make_session([CLAP, RIGHT_CW], SEED, 4, "led", settings=TINY)
    assert [s.label for s in segments] == [CLAP, RIGHT_CW]
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["t"][0] >= SESSION_START_US and events["t"][-1] > segments[-1].end_us
    pause_s = (segments[1].start_us - segments[0].end_us) / 1e6
    assert 1.0 < pause_s < 3.0


def test_recording_command_writes_aedat4_with_labels(tmp_path):
    pytest.importorskip("dv_processing")
    from livegesture.sources.aedat4 import Aedat4Recording

    out = tmp_path / "session.aedat4"
    assert main(["synth", "recording", str(out), "--gestures", "left-hand-wave", "1", "--seed", str(SEED),
                 "--user", "2", "--lighting", "fluorescent", "--gesture-seconds", "0.4", "0.5", "--quiet"]) == 0
    real_timing = SynthSettings(timing=replace(DVSGESTURE_TIMING, gesture_seconds=(0.4, 0.5)))  # the default
    expected, segments = make_session([LEFT_WAVE, CLAP], SEED, 2, "fluorescent", settings=real_timing)
    with Aedat4Recording(out) as recording:
        events = np.concatenate(list(recording))
        assert recording.sensor_size == (128, 128)
        assert recording.labels == segments
    assert np.array_equal(events, expected)
    assert (tmp_path / "session_labels.csv").exists()
    again = tmp_path / "again.aedat4"
    write_recording(again, [LEFT_WAVE, CLAP], SEED, 2, "fluorescent", settings=real_timing)
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["dataset", "{out}", "--users", "0"], "users must be >= 1"),
    (["dataset", "{out}", "--users", "3", "--test-users", "3"], "fewer than the users"),
    (["dataset", "{out}", "--users", "2", "--lightings", "candle"], "unknown lighting 'candle'"),
    (["recording", "{out}.aedat4", "--gestures", "moonwalk"], "unknown gesture class 'moonwalk'"),
    (["recording", "{out}.aedat4", "--lighting", "candle"], "unknown lighting 'candle'"),
    (["recording", "{out}.aedat", "--gestures", "hand-clapping"], "written as .aedat4"),
])
def test_bad_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    argv = [a.format(out=tmp_path / "out") for a in argv]
    assert main(["synth", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livegesture: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_arguments_to_the_writers_raise_value_errors(tmp_path):
    with pytest.raises(ValueError, match="users must be >= 1"):
        write_dataset(tmp_path, 0)
    with pytest.raises(ValueError, match="fewer than the users"):
        write_dataset(tmp_path, 2, test_users=2)
    with pytest.raises(ValueError, match="listed more than once"):
        write_dataset(tmp_path, 2, ["lab", "lab"])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        write_dataset(tmp_path, 2, workers=0)
    assert not any(tmp_path.iterdir())
