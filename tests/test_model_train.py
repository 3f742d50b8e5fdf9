"""Training: a few steps on tiny data, checkpoints and resume, the dataset path, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livegesture.backends import run_sample
from livegesture.backends.fast import StructuredFastBackend
from livegesture.cli import main
from livegesture.events import DVS128_SIZE, make_events
from livegesture.integrate import integrate_sample
from livegesture.model.checkpoint import load_checkpoint
from livegesture.model.config import NetConfig, TrainConfig
from livegesture.model.files import load_model
from livegesture.model.net import SpikingNet
from livegesture.model.train import (
    FrameSet,
    TrainingError,
    augment,
    calibrate_init,
    load_dataset,
    mirror,
    split_validation,
    train,
)
from livegesture.sources.aedat3 import write_aedat3
from livegesture.sources.dataset import write_trials_lists
from livegesture.sources.labels import CLASS_NAMES, MIRRORED_CLASS, NUM_CLASSES, GestureSegment, write_labels


SIZE = 21
TINY = TrainConfig(epochs=2, qat_epochs=1, batch_size=4, max_shift=2, mirror=False,
                   net=NetConfig(channels=3, conv_layers=2, num_classes=3, input_shape=(2, SIZE, SIZE)))


def tiny_frames(n: int = 18, seed: int = 0) -> FrameSet:
    """Class k lights up band k of a small frame: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    frames = (rng.random((n, 10, 2, SIZE, SIZE)) < 0.02).astype(np.uint8)
    for i, label in enumerate(labels):
        frames[i, :, :, 7 * label:7 * label + 7, 3:18] |= (rng.random((10, 2, 7, 15)) < 0.3).astype(np.uint8)
    return FrameSet(frames, labels, np.zeros(n, np.int64), tuple(map(str, range(n))))


def test_train_writes_a_model_whose_integer_accuracy_is_measured_on_the_backend(tmp_path):
    data = tiny_frames()
    result = train(data, data, tmp_path, TINY, progress=False, echo=lambda _: None, provenance={"dataset": "tiny"})
    model = load_model(result.model_path)
    assert model.info.training["dataset"] == "tiny"
    accuracy = model.info.training["accuracy"]
    assert accuracy["integer"] == result.integer_accuracy and accuracy["float"] == result.float_accuracy
    assert accuracy["integer_torch"] == result.integer_accuracy  # torch QAT net == deployed backend
    backend = StructuredFastBackend(model.network)
    predictions = [int(np.argmax(run_sample(backend, f, model.info.drain_steps))) for f in data.frames]
    assert np.mean(np.array(predictions) == data.labels) == pytest.approx(result.integer_accuracy)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["phase"], r.get("epoch")) for r in log] == [("float", 1), ("float", 2), ("qat", 1), ("final", None)]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"} <= set(log[0])
    assert {p.name for p in tmp_path.iterdir()} >= {"checkpoint.pt", "best-float.pt", "best-qat.pt", "model.npz"}


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    data = tiny_frames()
    messages: list[str] = []
    first = TrainConfig(**{**TINY.__dict__, "qat_epochs": 0})
    train(data, data, tmp_path, first, progress=False, echo=messages.append)
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(data, data, tmp_path, first, progress=False, echo=messages.append)
    with pytest.raises(TrainingError, match="other settings"):
        train(data, data, tmp_path, TINY, resume=True, progress=False, echo=messages.append)
    messages.clear()
    train(data, data, tmp_path, first, resume=True, progress=False, echo=messages.append)
    assert any("resuming float phase after epoch 2" in m for m in messages)
    assert not any("epoch   1" in m for m in messages)


def test_a_run_can_start_from_the_float_weights_of_another(tmp_path):
    data = tiny_frames()
    train(data, data, tmp_path / "a", TINY, progress=False, echo=lambda _: None)
    frozen = TrainConfig(**{**TINY.__dict__, "epochs": 1, "qat_epochs": 0, "lr": 0.0})
    messages: list[str] = []
    train(data, data, tmp_path / "b", frozen, init=tmp_path / "a" / "best-float.pt", progress=False,
          echo=messages.append)
    assert any("starting from the weights of" in m for m in messages)
    assert not any("initial firing rates" in m for m in messages)  # no fresh initialisation
    before = load_checkpoint(tmp_path / "a" / "best-float.pt").net.state_dict()
    after = load_checkpoint(tmp_path / "b" / "best-float.pt").net.state_dict()
    assert before.keys() == after.keys()
    for key in before:  # a learning rate of 0 keeps the weights it started from
        torch.testing.assert_close(after[key], before[key])
    with pytest.raises(TrainingError, match="quantization-aware"):
        train(data, data, tmp_path / "c", frozen, init=tmp_path / "a" / "best-qat.pt", progress=False)
    wider = TrainConfig(**{**frozen.__dict__, "net": NetConfig(**{**TINY.net.__dict__, "channels": 4})})
    with pytest.raises(TrainingError, match="architecture"):
        train(data, data, tmp_path / "d", wider, init=tmp_path / "a" / "best-float.pt", progress=False)


def test_calibration_wakes_every_layer_up():
    torch.manual_seed(0)
    net = SpikingNet(TINY.net)
    frames = torch.from_numpy(tiny_frames(8).frames).float()
    rates = calibrate_init(net, frames, TINY.drain_steps)
    assert all(0.05 <= r <= 0.2 for r in rates), rates


def test_mirrored_classes_swap_side_and_sense_by_name():
    swap = {"right": "left", "left": "right", "clockwise": "counter-clockwise", "counter-clockwise": "clockwise"}
    for label, mirrored in enumerate(MIRRORED_CLASS):
        words = CLASS_NAMES[label].split(" ")
        assert " ".join(swap.get(w, w) for w in words) == CLASS_NAMES[mirrored]
        assert MIRRORED_CLASS[mirrored] == label


def test_a_mirrored_frame_is_the_frame_of_mirrored_events():
    rng = np.random.default_rng(3)
    events = make_events(np.sort(rng.integers(0, 10**6, 5000)), rng.integers(0, 128, 5000),
                         rng.integers(0, 128, 5000), rng.integers(0, 2, 5000))
    mirrored = events.copy()
    mirrored["x"] = DVS128_SIZE[0] - 1 - events["x"]
    np.testing.assert_array_equal(integrate_sample(mirrored, 10, DVS128_SIZE),
                                  integrate_sample(events, 10, DVS128_SIZE)[..., ::-1])


def test_mirror_augmentation_flips_samples_with_their_labels():
    frames = torch.rand(64, 3, 2, SIZE, SIZE)
    labels = torch.arange(64) % NUM_CLASSES
    out, out_labels = mirror(frames, labels, torch.Generator().manual_seed(0))
    flipped = (out != frames).flatten(1).any(1)
    assert 10 < int(flipped.sum()) < 54
    for k in range(64):
        expected = frames[k].flip(-1) if flipped[k] else frames[k]
        torch.testing.assert_close(out[k], expected)
        assert int(out_labels[k]) == (MIRRORED_CLASS[int(labels[k])] if flipped[k] else int(labels[k]))


def test_mirroring_needs_the_dvs_gesture_classes():
    with pytest.raises(ValueError, match="mirroring"):
        TrainConfig(net=NetConfig(num_classes=3))


def test_augmentation_shifts_whole_samples_and_drops_pixels():
    frames = torch.zeros(2, 10, 2, SIZE, SIZE)
    frames[:, :, :, 10, 10] = 1
    out = augment(frames, max_shift=3, drop_rate=0.0, generator=torch.Generator().manual_seed(1))
    for sample in out:
        positions = {tuple(p.tolist()) for p in sample.nonzero()[:, 2:]}
        assert len(positions) == 1  # every frame and channel shifted alike: motion is kept
        (y, x), = positions
        assert abs(y - 10) <= 3 and abs(x - 10) <= 3
    dense = torch.ones(1, 10, 2, SIZE, SIZE)
    kept = augment(dense, 0, 0.25, torch.Generator().manual_seed(2)).mean()
    assert 0.7 < float(kept) < 0.8


def test_training_says_when_no_validation_sample_is_held_out(tmp_path):
    messages: list[str] = []
    one_epoch = TrainConfig(**{**TINY.__dict__, "epochs": 1, "qat_epochs": 0})
    train(tiny_frames(18), tiny_frames(6), tmp_path, one_epoch, progress=False, echo=messages.append)
    (line,) = [m for m in messages if m.startswith("training on")]
    assert "18 samples, no validation samples (0.1 of at most 6 per class rounds to 0" in line


def test_validation_split_is_stratified_and_disjoint():
    data = tiny_frames(30)
    fit, val = split_validation(data, 0.2, seed=0)
    assert len(fit) + len(val) == 30 and not set(fit.names) & set(val.names)
    assert np.bincount(val.labels).tolist() == [2, 2, 2]


def write_tiny_dataset(root, users=(1, 2), test_users=(2,)):
    rng = np.random.default_rng(0)
    root.mkdir()
    for user in users:
        n = 30_000
        events = make_events(np.sort(rng.integers(0, 3_000_000, n)), rng.integers(0, 128, n),
                             rng.integers(0, 128, n), rng.integers(0, 2, n))
        write_aedat3(root / f"user{user:02d}_led.aedat", events, DVS128_SIZE)
        write_labels(root / f"user{user:02d}_led_labels.csv",
                     [GestureSegment(k, 1_000_000 * k, 1_000_000 * (k + 1)) for k in range(3)])
    write_trials_lists(root, [f"user{u:02d}_led.aedat" for u in users if u not in test_users],
                       [f"user{u:02d}_led.aedat" for u in test_users])


def test_dataset_frames_follow_the_reference_transform_and_are_cached(tmp_path):
    write_tiny_dataset(tmp_path / "data")
    train_set, test_set, provenance = load_dataset(tmp_path / "data", 10, tmp_path / "out", progress=False)
    assert (len(train_set), len(test_set)) == (3, 3) and train_set.labels.tolist() == [0, 1, 2]
    assert provenance["train_users"] == [1] and provenance["test_users"] == [2]
    from livegesture.sources.aedat3 import read_aedat3

    events = read_aedat3(tmp_path / "data" / "user01_led.aedat").events
    first = events[(events["t"] >= 0) & (events["t"] < 1_000_000)]
    assert np.array_equal(train_set.frames[0], integrate_sample(first, 10, DVS128_SIZE))
    assert (tmp_path / "out" / "frames-train-T10.npz").exists()
    again, _, _ = load_dataset(tmp_path / "data", 10, tmp_path / "out", progress=False)
    assert np.array_equal(again.frames, train_set.frames)


def test_cli_train_and_convert(tmp_path, capsys):
    write_tiny_dataset(tmp_path / "data", users=(1, 2, 3), test_users=(3,))
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "data"), "-o", str(out), "--epochs", "1", "--qat-epochs", "1",
                 "--channels", "2", "--conv-layers", "1", "--batch-size", "3", "--no-progress",
                 "--class-weight", "11", "3"]) == 0
    assert "model.npz: float" in capsys.readouterr().out
    model = load_model(out / "model.npz")
    assert model.network.num_outputs == 11
    assert model.info.training["config"]["class_weights"] == [1.0] * 10 + [3.0]  # "other gestures" is class 11
    for bad in (["0", "2"], ["12", "2"], ["3", "0"], ["2.5", "1"]):
        assert main(["train", str(tmp_path / "data"), "-o", str(tmp_path / "bad"), "--class-weight", *bad]) == 2
        assert "--class-weight" in capsys.readouterr().err
    assert main(["convert", str(out / "best-float.pt"), "--verify", "1", "-o", str(tmp_path / "net.pkl")]) == 0
    text = capsys.readouterr().out
    assert "identical output spikes" in text and "written" in text
    assert main(["convert", str(tmp_path / "net.pkl")]) == 0
    assert main(["convert", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: no such model file" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
