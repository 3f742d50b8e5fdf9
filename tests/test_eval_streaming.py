"""Streaming evaluation: the live pipeline's decisions on a stream with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livegesture.backends.testing import random_network
from livegesture.cli import main
from livegesture.evaluate.recordings import find_recordings
from livegesture.evaluate.streaming import evaluate_stream
from livegesture.evaluate.testing import forced_network, hand_events, write_hand_stream
from livegesture.model.files import ModelFileError, ModelInfo, save_model
from livegesture.pipeline.engine import decide_stream
from livegesture.pipeline.settings import save_settings
from livegesture.sources.labels import GestureSegment

OUTSIDE = GestureSegment(4, 500_000, 600_000)
"""A label after the last event: skipped."""
# Windows of 2 frames end at 20, 40, ..., 120 ms and decide None, 0, 3, 0, 2, None.
EXPECTED_DECISIONS = [(20_000, None), (40_000, 0), (60_000, 3), (80_000, 0), (100_000, 2), (120_000, None)]


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    """Never read or write the user's config."""
    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(tmp_path / "user-config.toml"))


def test_the_pipeline_decides_as_worked_out_by_hand(tmp_path):
    recording, settings = write_hand_stream(tmp_path, [OUTSIDE])
    decisions = list(decide_stream((hand_events(),), (128, 128), forced_network(), settings))
    assert [(d.t_us, d.label) for d in decisions] == EXPECTED_DECISIONS


def test_streaming_scores_of_the_hand_made_stream(tmp_path):
    recording, settings = write_hand_stream(tmp_path, [OUTSIDE])
    evaluation = evaluate_stream(find_recordings(recording), settings)
    score = evaluation.score
    # inside gesture 0 (30-90 ms): 0 (40 ms), 3 (60 ms), 0 (80 ms); inside gesture 2 (95-105 ms): 2 (100 ms)
    assert score.frame_accuracy == pytest.approx(3 / 4)
    assert score.idle_rejection == 1.0  # None at 20 and 120 ms
    assert [g.first_correct_us for g in score.gestures] == [10_000, 5_000]
    assert [g.false_switches for g in score.gestures] == [1, 0]  # 0 -> 3 inside gesture 0
    assert score.median_latency_s == pytest.approx(0.0075)
    assert score.never_correct == 0.0
    assert [(s.segment, s.samples) for s in evaluation.skipped] == [(2, 1)]
    assert "outside the recording's events" in evaluation.skipped[0].reason


def test_cli_streaming_reports_json_and_plots(tmp_path, capsys):
    recording, settings = write_hand_stream(tmp_path, [OUTSIDE])
    config = save_settings(settings.replace(events_per_frame=999), tmp_path / "config.toml")
    out = tmp_path / "report"
    assert main(["eval", str(recording), "--streaming", "--config", str(config), "--events-per-frame", "10",
                 "--workers", "1", "-o", str(out), "--no-progress"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["mode"] == "streaming" and report["settings"]["events_per_frame"] == 10
    assert report["frame_accuracy"] == pytest.approx(0.75) and report["false_switches"] == 1
    assert report["latency"]["median_s"] == pytest.approx(0.0075)
    assert report["onset_curve"] == {"bin_s": 0.25, "correct": [3], "total": [4]}
    confusion = np.array(report["decision_confusion_matrix"])
    assert confusion[0, 0] == 2 and confusion[0, 3] == 1 and confusion[2, 2] == 1 and confusion[11, 11] == 2
    for name in ("confusion.png", "onset.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "75.0 %" in capsys.readouterr().out
    assert main(["eval", str(recording), "--streaming", "--config", str(config), "--float-checkpoint", "x.pt",
                 "-o", str(out)]) == 2


def test_a_model_for_other_frames_is_refused_before_anything_runs(tmp_path):
    recording, settings = write_hand_stream(tmp_path)
    small = random_network(np.random.default_rng(0), input_shape=(2, 15, 15), num_classes=11)
    model = save_model(tmp_path / "small.npz", small, ModelInfo())
    with pytest.raises(ModelFileError, match="small.npz.*63x63"):
        evaluate_stream(find_recordings(recording), settings.replace(model=str(model)))
