"""Per-sample evaluation: the arithmetic on a network whose outputs are forced, robustness,
Ctrl-C, the process pool, backend parity, the torch model of a checkpoint, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from livegesture.backends.testing import random_network
from livegesture.cli import main
from livegesture.events import DVS128_SIZE, LivegestureError, make_events
from livegesture.evaluate.per_sample import EvaluatorSpec, evaluate_samples
from livegesture.evaluate.recordings import find_recordings
from livegesture.evaluate.testing import InterruptedAt, forced_events, forced_network
from livegesture.integrate import integrate_sample
from livegesture.model.config import NetConfig, TrainConfig
from livegesture.model.files import ModelFileError, ModelInfo, save_model
from livegesture.model.net import SpikingNet, output_counts
from livegesture.model.quantize import choose_scale, export, prepare_qat
from livegesture.sources.aedat3 import read_aedat3, write_aedat3
from livegesture.sources.dataset import write_trials_lists
from livegesture.sources.labels import CLASS_NAMES, GestureSegment, labels_path_for, write_labels

TIMESTEPS, DRAIN = 4, 2
EVENTS_PER_ENTRY = 10
GAP_US = 100_000
TRAINING = {"accuracy": {"split": "test", "samples": 6, "float": 0.75, "integer": 0.5}}
# (label, the class each quarter of its events shows): the forced net predicts by counting frames
HAND_CASE = [
    (0, [0, 0, 0, 0]),           # 4 frames of class 0 -> 0, right
    (1, [2, 2, 2, 2]),           # -> 2, wrong
    (1, [1, 1, 1, 1]),           # -> 1, right
    (2, [2, 2, 2, 0]),           # counts 3 (class 2) : 1 (class 0) -> 2, right
    (2, [2, 3, 3, 3]),           # counts 1 : 3 -> 3, wrong
    (3, [None] * 4),             # silent net: argmax of zeros -> class 0, wrong
]
HAND_PREDICTIONS = [0, 2, 1, 2, 3, 0]


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    """Never read or write the user's config."""
    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(tmp_path / "user-config.toml"))


def forced_model(folder: Path) -> Path:
    return save_model(folder / "forced.npz", forced_network(), ModelInfo(TIMESTEPS, DRAIN, training=TRAINING))


def write_gestures(path: Path, gestures: list[tuple[int, list[int | None]]],
                   extra_labels: tuple[GestureSegment, ...] = ()) -> list[GestureSegment]:
    """An AEDAT 3.1 recording: each gesture's events (1 ms apart), separated by silent gaps."""
    parts, segments, t = [], [], GAP_US
    for label, classes in gestures:
        events = forced_events(classes, EVENTS_PER_ENTRY, t, 1_000)
        parts += [events, forced_events([None], 5, int(events["t"][-1]) + 10_000, 1_000)]
        segments.append(GestureSegment(label, t, int(events["t"][-1]) + 1))
        t = int(events["t"][-1]) + GAP_US
    write_aedat3(path, np.concatenate(parts), DVS128_SIZE)
    write_labels(labels_path_for(path), segments + list(extra_labels))
    return segments


def test_forced_pixels_light_exactly_their_frame_pixel():
    for label in range(len(CLASS_NAMES)):
        frame = integrate_sample(forced_events([label], 3, 0, 1), 1, DVS128_SIZE)[0]
        assert np.flatnonzero(frame).tolist() == [np.ravel_multi_index((1, 0, label), frame.shape)]


def test_per_sample_arithmetic_on_forced_outputs(tmp_path):
    model = forced_model(tmp_path)
    recording = tmp_path / "session.aedat"
    write_gestures(recording, HAND_CASE)
    evaluation = evaluate_samples(find_recordings(recording), EvaluatorSpec(model))
    assert [r.prediction for r in evaluation.results] == HAND_PREDICTIONS
    assert [r.label for r in evaluation.results] == [label for label, _ in HAND_CASE]
    assert list(evaluation.results[3].counts) == [1, 0, 3] + [0] * 8
    assert evaluation.silent == 1
    scores = evaluation.scores
    assert (scores.correct, scores.samples) == (3, 6)
    assert scores.class_accuracy[:5] == [1.0, 0.5, 0.5, 0.0, None]
    expected = np.zeros((11, 11), dtype=int)
    for (label, _), prediction in zip(HAND_CASE, HAND_PREDICTIONS):
        expected[label, prediction] += 1
    assert np.array_equal(scores.confusion, expected)
    report = evaluation.to_dict()
    assert report["accuracy"] == 0.5 and report["training_accuracy"] == TRAINING["accuracy"]
    assert report["recordings"] == [{"recording": str(recording), "samples": 6, "correct": 3, "accuracy": 0.5,
                                     "skipped": 0}]
    assert report["skipped"] == [] and report["not_run"] == 0


def test_bad_files_and_unusable_labels_are_skipped_and_counted(tmp_path):
    model = forced_model(tmp_path)
    good = tmp_path / "good.aedat"
    segments = write_gestures(good, HAND_CASE[:2], extra_labels=(GestureSegment(4, 10_000_000, 11_000_000),))
    # a label inside the recording's span but in a gap (no events), appended after the others
    gap = GestureSegment(5, segments[0].end_us + 20_000, segments[0].end_us + 30_000)
    write_labels(labels_path_for(good), [*segments, GestureSegment(4, 10_000_000, 11_000_000), gap])
    truncated = tmp_path / "truncated.aedat"
    write_gestures(truncated, HAND_CASE[:3])
    truncated.write_bytes(truncated.read_bytes()[:-7])
    garbage = tmp_path / "garbage.aedat4"
    garbage.write_bytes(b"not an aedat4 file at all")
    write_labels(labels_path_for(garbage), segments)
    (tmp_path / "unlabelled.aedat").write_bytes(good.read_bytes())
    bad_labels = tmp_path / "bad_labels.aedat"
    bad_labels.write_bytes(good.read_bytes())
    labels_path_for(bad_labels).write_text("class,start\n1,2\n")

    inventory = find_recordings(tmp_path)
    evaluation = evaluate_samples(inventory, EvaluatorSpec(model))
    assert [(Path(r.recording).name, r.segment, r.prediction) for r in evaluation.results] == [
        ("good.aedat", 0, 0), ("good.aedat", 1, 2)]
    reasons = {(Path(s.recording).name, s.segment): (s.samples, s.reason) for s in evaluation.skipped}
    assert set(reasons) == {("unlabelled.aedat", None), ("bad_labels.aedat", None), ("garbage.aedat4", None),
                            ("truncated.aedat", None), ("good.aedat", 2), ("good.aedat", 3)}
    assert "no label file unlabelled_labels.csv" in reasons[("unlabelled.aedat", None)][1]
    assert "header" in reasons[("bad_labels.aedat", None)][1]
    assert reasons[("garbage.aedat4", None)][0] == 2
    assert reasons[("truncated.aedat", None)] == (3, reasons[("truncated.aedat", None)][1])
    assert "truncated" in reasons[("truncated.aedat", None)][1]
    assert "outside the recording's events" in reasons[("good.aedat", 2)][1]
    assert "holds no events" in reasons[("good.aedat", 3)][1]
    assert evaluation.skipped_samples == 2 + 3 + 1 + 1


def test_ctrl_c_keeps_what_finished(tmp_path):
    model = forced_model(tmp_path)
    for name, case in (("a", HAND_CASE[:2]), ("b", HAND_CASE[2:4]), ("c", HAND_CASE[4:])):
        write_gestures(tmp_path / f"{name}.aedat", case)
    evaluation = evaluate_samples(find_recordings(tmp_path), EvaluatorSpec(model), progress=InterruptedAt(2))
    # a.aedat and b.aedat finished (b's update was interrupted after it ran); c.aedat never ran
    assert [r.prediction for r in evaluation.results] == HAND_PREDICTIONS[:4]
    assert evaluation.not_run == 2
    assert evaluation.to_dict()["interrupted"]


def test_a_process_pool_gives_the_same_results_and_stops_on_ctrl_c(tmp_path, monkeypatch):
    from livegesture.evaluate import pool

    monkeypatch.setattr(pool, "POOL_STARTUP_S", 0.0)  # the pool always pays: its workers run
    model = forced_model(tmp_path)
    for name, case in (("a", HAND_CASE[:3]), ("b", HAND_CASE[3:])):
        write_gestures(tmp_path / f"{name}.aedat", case)
    inventory = find_recordings(tmp_path)
    alone = evaluate_samples(inventory, EvaluatorSpec(model), workers=1)
    pooled = evaluate_samples(inventory, EvaluatorSpec(model), workers=2)
    assert pooled.results == alone.results
    assert [r.prediction for r in pooled.results] == HAND_PREDICTIONS
    stopped = evaluate_samples(inventory, EvaluatorSpec(model), workers=2, progress=InterruptedAt(1))
    assert stopped.not_run > 0 and len(stopped.results) + stopped.not_run == 6
    assert set(stopped.results) <= set(alone.results)


def random_gestures(path: Path, labels: list[int], seed: int) -> None:
    """Random DVS128 events, 1,000 to 3,000 per one-second gesture, labelled ``labels``."""
    rng = np.random.default_rng(seed)
    counts = 1_000 * (1 + np.arange(len(labels)) % 3)
    t = np.sort(np.concatenate([rng.integers(1_000_000 * i, 1_000_000 * (i + 1), n) for i, n in enumerate(counts)]))
    n = len(t)
    events = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    write_aedat3(path, events, DVS128_SIZE)
    write_labels(labels_path_for(path), [GestureSegment(label, 1_000_000 * i, 1_000_000 * (i + 1))
                                         for i, label in enumerate(labels)])


def test_simplesim_and_fast_backends_predict_identically(tmp_path):
    network = random_network(np.random.default_rng(3), channels=3, conv_layers=2, input_shape=(2, 15, 15),
                             num_classes=5)
    model = save_model(tmp_path / "small.npz", network, ModelInfo(5, 3, class_names=CLASS_NAMES[:5]))
    random_gestures(tmp_path / "random.aedat", [0, 1, 2, 3, 4, 0], seed=4)
    inventory = find_recordings(tmp_path / "random.aedat")
    fast = evaluate_samples(inventory, EvaluatorSpec(model, "fast"))
    simplesim = evaluate_samples(inventory, EvaluatorSpec(model, "simplesim"))
    assert [r.counts for r in fast.results] == [r.counts for r in simplesim.results]
    assert [r.prediction for r in fast.results] == [r.prediction for r in simplesim.results]
    assert sum(map(sum, (r.counts for r in fast.results))) > 0
    assert len({r.prediction for r in fast.results}) > 1


GAIN, BIAS = 3.0, 0.1
"""Scale the default init so that spikes reach the outputs, in varied numbers."""


def checkpoint(folder: Path, qat: bool) -> tuple[Path, Path, SpikingNet]:
    """A training checkpoint of a small lively net (float, or quantization-aware) and its model file."""
    net_config = NetConfig(channels=4, conv_layers=2, input_shape=(2, 15, 15), num_classes=5)
    config = TrainConfig(timesteps=TIMESTEPS, drain_steps=DRAIN, mirror=False, net=net_config)
    torch.manual_seed(0)
    net = SpikingNet(net_config)
    with torch.no_grad():
        for module in net.weight_layers():
            module.weight.mul_(GAIN).add_(BIAS)
    scale = choose_scale(net)
    network = export(net, scale)
    if qat:
        prepare_qat(net, scale)
    path = folder / ("best-qat.pt" if qat else "best-float.pt")
    torch.save({"model": net.state_dict(), "scale": scale if qat else None, "epoch": 1, "config": config.to_dict()},
               path)
    model = save_model(folder / "model.npz", network, ModelInfo(TIMESTEPS, DRAIN, class_names=CLASS_NAMES[:5]))
    return path, model, net


def test_the_quantization_aware_checkpoint_agrees_with_the_converted_model(tmp_path):
    path, model, _ = checkpoint(tmp_path, qat=True)
    random_gestures(tmp_path / "random.aedat", [0, 1, 2, 3, 4, 1, 2], seed=5)
    evaluation = evaluate_samples(find_recordings(tmp_path / "random.aedat"), EvaluatorSpec(model, checkpoint=path))
    assert evaluation.torch_phase == "qat"
    assert [r.torch_prediction for r in evaluation.results] == [r.prediction for r in evaluation.results]
    assert len({r.prediction for r in evaluation.results}) > 2
    report = evaluation.to_dict()["torch_model"]
    assert report["agreement"] == 1.0 and report["accuracy"] == evaluation.scores.accuracy


def test_the_float_checkpoint_is_run_on_the_same_frames(tmp_path):
    path, model, net = checkpoint(tmp_path, qat=False)
    recording = tmp_path / "random.aedat"
    random_gestures(recording, [0, 1, 2, 3], seed=6)
    evaluation = evaluate_samples(find_recordings(recording), EvaluatorSpec(model, checkpoint=path))
    assert evaluation.torch_phase == "float"
    events = read_aedat3(recording).events
    expected = []
    for i in range(4):
        cut = events[(events["t"] >= 1_000_000 * i) & (events["t"] < 1_000_000 * (i + 1))]
        frames = torch.from_numpy(integrate_sample(cut, TIMESTEPS, DVS128_SIZE, 15)).float().unsqueeze(1)
        with torch.no_grad():
            expected.append(int(output_counts(net.eval(), frames, DRAIN)[0].argmax()))
    assert [r.torch_prediction for r in evaluation.results] == expected
    assert len(set(expected)) > 1


def test_unusable_models_and_sources_are_clear_errors(tmp_path):
    recording = tmp_path / "rec.aedat"
    write_gestures(recording, HAND_CASE[:1])
    inventory = find_recordings(recording)
    odd = random_network(np.random.default_rng(0), input_shape=(2, 15, 21), conv_layers=1, num_classes=11)
    with pytest.raises(ModelFileError, match="odd.npz.*square"):
        evaluate_samples(inventory, EvaluatorSpec(save_model(tmp_path / "odd.npz", odd, ModelInfo())))
    with pytest.raises(ModelFileError, match="missing.npz"):
        evaluate_samples(inventory, EvaluatorSpec(tmp_path / "missing.npz"))
    with pytest.raises(LivegestureError, match="no such file"):
        find_recordings(tmp_path / "nowhere")
    labels_path_for(recording).unlink()
    with pytest.raises(LivegestureError, match="nothing to evaluate.*no label file"):
        find_recordings(recording)
    notes = tmp_path / "notes.txt"
    notes.write_text("not events")
    with pytest.raises(LivegestureError, match="not a recording"):
        find_recordings(notes)


def test_cli_evaluates_the_test_split_of_a_dataset_folder(tmp_path, capsys):
    model = forced_model(tmp_path)
    dataset = tmp_path / "DvsGesture"
    dataset.mkdir()
    write_gestures(dataset / "user01_natural.aedat", HAND_CASE[:2])
    write_gestures(dataset / "user02_natural.aedat", HAND_CASE)
    write_trials_lists(dataset, ["user01_natural.aedat"], ["user02_natural.aedat"])
    out = tmp_path / "report"
    assert main(["eval", str(tmp_path), "--model", str(model), "--backend", "fast", "--workers", "1",
                 "-o", str(out), "--no-progress"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["samples"] == 6 and report["accuracy"] == 0.5
    assert [s["prediction"] for s in report["per_sample"]] == HAND_PREDICTIONS
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "50.0 % (3 of 6 gestures)" in printed and "user02_natural.aedat" in printed
    assert main(["eval", str(tmp_path), "--model", str(model), "--backend", "nonsense", "-o", str(out)]) == 2
    assert "backend" in capsys.readouterr().err


def test_cli_checks_the_output_folder_before_evaluating(tmp_path, capsys):
    model = forced_model(tmp_path)
    write_gestures(tmp_path / "session.aedat", HAND_CASE)
    taken = tmp_path / "taken"
    taken.write_text("an existing file")
    (tmp_path / "with-folder").mkdir()
    (tmp_path / "with-folder" / "eval.json").mkdir()
    for out, problem in ((taken, "output folder is an existing file"),
                         (taken / "below", "cannot create the output folder"),
                         (tmp_path / "with-folder", "is a folder, where the results go")):
        assert main(["eval", str(tmp_path / "session.aedat"), "--model", str(model), "-o", str(out),
                     "--no-progress"]) == 2
        err = capsys.readouterr()
        assert err.err.count("\n") == 1 and problem in err.err and err.out == ""  # nothing evaluated


def test_cli_writes_eval_json_before_rendering(tmp_path, monkeypatch):
    import livegesture.evaluate.command as command

    model = forced_model(tmp_path)
    write_gestures(tmp_path / "session.aedat", HAND_CASE)

    def broken(*_):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(command, "print_tables", broken)
    with pytest.raises(RuntimeError, match="rendering failed"):
        main(["eval", str(tmp_path / "session.aedat"), "--model", str(model), "-o", str(tmp_path / "out"),
              "--workers", "1", "--no-progress"])
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert [s["prediction"] for s in report["per_sample"]] == HAND_PREDICTIONS


def test_a_corrupt_aedat4_in_a_folder_is_skipped_and_the_rest_evaluated(tmp_path):
    from test_aedat4 import corrupt_middle_packet, regular_events
    import lz4.frame
    from livegesture.sources.aedat4 import write_aedat4

    model = forced_model(tmp_path)
    write_gestures(tmp_path / "good.aedat", HAND_CASE)
    bad = tmp_path / "bad.aedat4"
    write_aedat4(bad, regular_events(200_000), DVS128_SIZE)
    write_labels(labels_path_for(bad), [GestureSegment(0, 0, 1_000_000)])
    offset = corrupt_middle_packet(bad, RuntimeError, lz4.frame.decompress)
    evaluation = evaluate_samples(find_recordings(tmp_path), EvaluatorSpec(model), workers=2, timeout_s=60)
    assert [r.prediction for r in evaluation.results] == HAND_PREDICTIONS
    (skipped,) = evaluation.skipped
    assert skipped.recording == str(bad) and f"corrupt event packet at byte {offset}" in skipped.reason


def test_a_label_file_that_is_not_utf8_skips_its_recording_only(tmp_path):
    write_gestures(tmp_path / "good.aedat", HAND_CASE)
    write_gestures(tmp_path / "latin1.aedat", HAND_CASE)
    labels_path_for(tmp_path / "latin1.aedat").write_bytes("class,startTime_usec,endTime_usec\n1,2,3 é\n".encode("latin-1"))
    inventory = find_recordings(tmp_path)
    assert [r.path.name for r in inventory.recordings] == ["good.aedat"]
    (skipped,) = inventory.skipped
    assert skipped.recording == str(tmp_path / "latin1.aedat") and "label file is not UTF-8 text" in skipped.reason


@pytest.mark.parametrize("mode", [[], ["--streaming"]], ids=["per-sample", "streaming"])
def test_cli_warns_about_a_recording_from_another_sensor_than_the_models(tmp_path, capsys, mode):
    """A DVS128 model sees a DAVIS346 recording through its ROI, as trained: nothing to say; a model
    trained on a DAVIS346 is warned about on the DVS128 recording only."""
    recording = tmp_path / "davis.aedat"
    write_gestures(recording, HAND_CASE)
    write_aedat3(recording, read_aedat3(recording).events, (346, 260))  # the same events, a DAVIS346 header
    write_gestures(tmp_path / "dvs128.aedat", HAND_CASE)
    davis_model = save_model(tmp_path / "davis.npz", forced_network(),
                             ModelInfo(TIMESTEPS, DRAIN, training=TRAINING, sensor_size=(346, 260)))
    for model, out, warned in ((forced_model(tmp_path), tmp_path / "dvs128-model", None),
                               (davis_model, tmp_path / "davis-model", tmp_path / "dvs128.aedat")):
        assert main(["eval", str(tmp_path), "--model", str(model), "-o", str(out), "--workers", "1",
                     "--no-progress", *mode]) == 0
        warnings = json.loads((out / "eval.json").read_text())["warnings"]
        printed = capsys.readouterr().out
        if warned is None:
            assert warnings == [] and "warning" not in printed
        else:
            expected = f"{warned}: the model was trained on a 346x260 sensor, not this 128x128 one"
            assert [w[:len(expected)] for w in warnings] == [expected] and f"warning: {expected}" in printed


def test_cli_exits_non_zero_when_nothing_was_evaluated(tmp_path, capsys):
    model = forced_model(tmp_path)
    recording = tmp_path / "late.aedat"
    write_aedat3(recording, forced_events([0], 10, 1_000, 1_000), DVS128_SIZE)
    write_labels(labels_path_for(recording), [GestureSegment(0, 50_000_000, 60_000_000)])  # after every event
    assert main(["eval", str(recording), "--model", str(model), "--backend", "fast", "--workers", "1",
                 "-o", str(tmp_path / "report"), "--no-progress"]) == 1
    assert "nothing was evaluated (1 gestures skipped" in capsys.readouterr().out


def test_cli_exits_non_zero_when_every_task_was_stopped_by_the_watchdog(tmp_path, capsys):
    """Tasks the watchdog stopped count as not evaluated: with a 1 ms limit no task can finish."""
    model = forced_model(tmp_path)
    write_gestures(tmp_path / "session.aedat", HAND_CASE)
    assert main(["eval", str(tmp_path / "session.aedat"), "--model", str(model), "--backend", "fast", "--workers",
                 "1", "--file-timeout", "0.001", "-o", str(tmp_path / "report"), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "stopped after 0.001 s without finishing" in out and "nothing was evaluated" in out


def test_a_davis346_jaer_recording_is_evaluated_through_its_region_of_interest(tmp_path):
    """The hand case's events moved to (100 + x, 50 + y) of a DAVIS346 and written as AEDAT 2.0:
    with the 128x128 ROI at (100, 50) the network sees exactly the DVS128 frames."""
    from livegesture.sources.aedat2 import write_aedat2

    model = forced_model(tmp_path)
    write_gestures(tmp_path / "dvs128.aedat", HAND_CASE)
    events = read_aedat3(tmp_path / "dvs128.aedat").events.copy()
    events["x"] += 100
    events["y"] += 50
    davis = tmp_path / "davis" / "user01_led.aedat"
    davis.parent.mkdir()
    write_aedat2(davis, events, "eu.seebetter.ini.chips.davis.Davis346B")
    (davis.parent / "user01_led_labels.csv").write_text(labels_path_for(tmp_path / "dvs128.aedat").read_text())
    out = tmp_path / "report"
    assert main(["eval", str(davis), "--model", str(model), "--backend", "fast", "--workers", "1", "--roi", "100",
                 "50", "128", "-o", str(out), "--no-progress"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert [s["prediction"] for s in report["per_sample"]] == HAND_PREDICTIONS


def test_a_recording_with_a_reset_is_evaluated_with_its_labels_moved(tmp_path, capsys):
    """The hand case's second half restarted near t = 0 (a camera restart), its label rows in the
    restarted time: refused by default, and with --on-reset split the same predictions as before."""
    model = forced_model(tmp_path)
    segments = write_gestures(tmp_path / "whole.aedat", HAND_CASE)
    events = read_aedat3(tmp_path / "whole.aedat").events
    cut = int(np.searchsorted(events["t"], segments[3].start_us))
    offset = segments[3].start_us - 1_000  # the restarted camera's clock reads 1,000 us at gesture 4
    later = events[cut:].copy()
    later["t"] -= offset
    first, second = tmp_path / "first.aedat", tmp_path / "second.aedat"
    write_aedat3(first, events[:cut], DVS128_SIZE)
    write_aedat3(second, later, DVS128_SIZE)
    end_of_header = b"#!END-HEADER\r\n"
    recording = tmp_path / "restarted" / "user01_led.aedat"
    recording.parent.mkdir()
    recording.write_bytes(first.read_bytes() + second.read_bytes().split(end_of_header, 1)[1])
    moved = [*segments[:3], *(GestureSegment(s.label, s.start_us - offset, s.end_us - offset) for s in segments[3:])]
    write_labels(labels_path_for(recording), moved)
    args = ["eval", str(recording), "--model", str(model), "--backend", "fast", "--workers", "1", "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "refused")]) == 1
    assert "timestamp reset at event" in capsys.readouterr().out
    out = tmp_path / "report"
    assert main([*args, "--on-reset", "split", "-o", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert [s["prediction"] for s in report["per_sample"]] == HAND_PREDICTIONS


@pytest.mark.parametrize("timeout", ["600", "0"])
def test_eval_starts_the_workers_fork_server_before_reading_recordings_only_with_a_watchdog(tmp_path, monkeypatch,
                                                                                           timeout):
    from livegesture.evaluate import command, per_sample

    calls: list[object] = []
    monkeypatch.setattr(per_sample, "start_fork_server", lambda modules: calls.append(tuple(modules)))
    index = command.find_recordings
    monkeypatch.setattr(command, "find_recordings", lambda *args: calls.append("index") or index(*args))
    model = forced_model(tmp_path)
    write_gestures(tmp_path / "a.aedat", HAND_CASE)
    assert main(["eval", str(tmp_path / "a.aedat"), "--model", str(model), "--backend", "fast-sparse",
                 "--file-timeout", timeout, "--no-progress", "-o", str(tmp_path / "out")]) == 0
    preload = EvaluatorSpec(model, "fast-sparse").worker_modules
    assert preload == ("livegesture.evaluate.per_sample", "livegesture.backends.fast")
    # the command's own start, then evaluate_samples' (a no-op on the running server)
    assert calls == ([preload, "index", preload] if timeout != "0" else ["index"])
