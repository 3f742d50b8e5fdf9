"""The DVS Gesture folder layout and its per-gesture samples, against SpikingJelly's cut."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from livegesture.events import EventFormatError, make_events
from livegesture.reference import spikingjelly_function
from livegesture.sources.aedat3 import write_aedat3
from livegesture.sources.dataset import DvsGestureFolder, trial_name, write_trials_lists
from livegesture.sources.labels import GestureSegment, labels_path_for, write_labels

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_LABELS = SHARED_DATA / "dvsgesture_user01_natural_labels.csv"

SEGMENTS = {  # overlapping segments and a repeated class, as in some real label files
    "user01_led.aedat": [GestureSegment(0, 1_000_000, 3_000_000), GestureSegment(4, 2_500_000, 6_000_000),
                         GestureSegment(0, 6_000_000, 9_000_000)],
    "user01_natural.aedat": [GestureSegment(10, 0, 4_000_000), GestureSegment(7, 5_000_000, 5_000_001)],
    "user02_lab.aedat": [GestureSegment(3, 2_000_000, 8_000_000)],
}


def random_events(seed: int, n: int, t_end: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, t_end, n)), rng.integers(0, 128, n),
                       rng.integers(0, 128, n), rng.integers(0, 2, n))


def spikingjelly_cut(aedat: Path) -> list[tuple[int, dict[str, np.ndarray]]]:
    """(label, columns) per label row, as SpikingJelly's _split_aedat_files_to_np computes them."""
    events = spikingjelly_function("load_aedat_v3")(aedat)
    rows = np.loadtxt(labels_path_for(aedat), dtype=np.uint32, delimiter=",", skiprows=1, ndmin=2)
    masks = [(events["t"] >= start) & (events["t"] < end) for _, start, end in rows]
    return [(int(row[0]) - 1, {key: column[mask] for key, column in events.items()}) for row, mask in zip(rows, masks)]


def assert_samples_match_spikingjelly(folder: DvsGestureFolder, split: str) -> int:
    samples = list(folder.samples(split))
    expected = [(path, index, label, events) for path in folder.trials(split)
                for index, (label, events) in enumerate(spikingjelly_cut(path))]
    assert len(samples) == len(expected)
    for sample, (path, index, label, events) in zip(samples, expected):
        assert (sample.recording, sample.index, sample.label) == (path, index, label)
        for key, column in events.items():
            assert np.array_equal(sample.events[key], column), key
    return len(samples)


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "DvsGesture"
    root.mkdir()
    for seed, (name, segments) in enumerate(SEGMENTS.items()):
        write_aedat3(root / name, random_events(seed, 20_000, 10_000_000))
        write_labels(labels_path_for(root / name), segments)
    write_trials_lists(root, ["user01_led.aedat", root / "user01_natural.aedat"], ["user02_lab.aedat"])
    return root


def test_trials_lists_and_splits(dataset):
    assert (dataset / "trials_to_train.txt").read_text() == "user01_led.aedat\nuser01_natural.aedat\n"
    folder = DvsGestureFolder(dataset)
    assert folder.trials("train") == [dataset / "user01_led.aedat", dataset / "user01_natural.aedat"]
    assert folder.trials("test") == [dataset / "user02_lab.aedat"]
    assert folder.trials() == folder.trials("train") + folder.trials("test")
    assert DvsGestureFolder(dataset.parent).root == dataset  # the archive's parent folder works too
    with pytest.raises(ValueError, match="unknown split"):
        folder.trials("validation")


def test_trials_list_whitespace_and_blank_lines(dataset):
    (dataset / "trials_to_train.txt").write_text("user01_led.aedat  \r\n\n   \n\tuser01_natural.aedat\t\n\n")
    assert [p.name for p in DvsGestureFolder(dataset).trials("train")] == ["user01_led.aedat", "user01_natural.aedat"]


def test_samples_are_cut_as_spikingjelly_cuts(dataset):
    folder = DvsGestureFolder(dataset)
    assert assert_samples_match_spikingjelly(folder, "train") == 5
    assert assert_samples_match_spikingjelly(folder, "test") == 1
    sample = next(iter(folder.samples("test")))
    assert sample.segment == SEGMENTS["user02_lab.aedat"][0] and len(sample.events) > 0


def test_samples_with_the_real_label_file(tmp_path):
    if not REAL_LABELS.exists():
        pytest.skip("../shared/data is not present")
    root = tmp_path / "real"
    root.mkdir()
    name = "user01_natural.aedat"
    write_aedat3(root / name, random_events(7, 200_000, 185_000_000))
    shutil.copy(REAL_LABELS, labels_path_for(root / name))
    write_trials_lists(root, [], [name])
    folder = DvsGestureFolder(root)
    assert assert_samples_match_spikingjelly(folder, "test") == 12
    labels = [sample.label for sample in folder.samples("test")]
    assert labels == [0, 1, 2, 4, 3, 5, 6, 7, 7, 8, 9, 10]


def test_trial_name():
    assert trial_name(1, "fluorescent_led") == "user01_fluorescent_led.aedat"
    with pytest.raises(ValueError, match="unknown lighting"):
        trial_name(3, "sunny")


def test_missing_trials_list(dataset):
    (dataset / "trials_to_test.txt").unlink()
    with pytest.raises(EventFormatError, match="trials_to_test.txt: cannot read trials list"):
        DvsGestureFolder(dataset)


@pytest.mark.parametrize("missing", ["user01_natural.aedat", "user01_natural_labels.csv"])
def test_missing_recording_or_labels_is_named(dataset, missing):
    (dataset / missing).unlink()
    folder = DvsGestureFolder(dataset)
    assert len(folder.trials("test")) == 1
    for split in ("train", "all"):
        with pytest.raises(EventFormatError, match=f"{missing}: file is missing: user01_natural.aedat is listed "
                                                   f"in trials_to_train.txt"):
            folder.trials(split)


def test_overlapping_or_repeated_trials_are_refused(dataset):
    (dataset / "trials_to_test.txt").write_text("user02_lab.aedat\nuser01_led.aedat\n")
    with pytest.raises(EventFormatError, match="in both the train and the test list: user01_led.aedat"):
        DvsGestureFolder(dataset)
    with pytest.raises(EventFormatError, match="in both the train and the test list: user01_led.aedat"):
        write_trials_lists(dataset, ["user01_led.aedat"], ["user01_led.aedat"])
    (dataset / "trials_to_test.txt").write_text("user02_lab.aedat\nuser02_lab.aedat\n")
    with pytest.raises(EventFormatError, match="listed more than once: user02_lab.aedat"):
        DvsGestureFolder(dataset)
    (dataset / "trials_to_test.txt").write_text("user02_lab.txt\n")
    with pytest.raises(EventFormatError, match="'user02_lab.txt' is not an .aedat file name"):
        DvsGestureFolder(dataset)


def test_a_bad_label_file_leaves_out_that_recording_only(dataset):
    labels_path_for(dataset / "user01_led.aedat").write_bytes(b"class,startTime_usec,endTime_usec\n1,\xff,3\n")
    folder = DvsGestureFolder(dataset)
    samples = list(folder.samples("train"))
    assert {s.recording.name for s in samples} == {"user01_natural.aedat"}
    assert len(samples) == len(SEGMENTS["user01_natural.aedat"])
    (err,) = folder.skipped
    assert str(err).startswith(f"{labels_path_for(dataset / 'user01_led.aedat')}: label file is not UTF-8 text")
