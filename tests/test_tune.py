"""Tuning: a grid of streaming evaluations, the best point, the config file written."""

from __future__ import annotations

import json

import pytest

from livegesture.cli import main
from livegesture.evaluate.grid import Grid
from livegesture.evaluate.recordings import find_recordings
from livegesture.evaluate.testing import InterruptedAt, write_hand_stream
from livegesture.evaluate.tune import tune
from livegesture.pipeline.settings import load_settings, save_settings

# events_per_frame 10 gives the hand-worked windows (3 of the 4 decisions inside gestures right,
# both between them "no gesture": balanced accuracy 7/8; median latency 7.5 ms);
# 10,000 is more than the 120 events of the stream: no frame, no decision, accuracy 0.
GRID = Grid.of({"events_per_frame": (10_000, 10)})


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    """Never read or write the user's config."""
    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(tmp_path / "user-config.toml"))


def test_tune_finds_the_best_point_of_the_grid(tmp_path):
    recording, settings = write_hand_stream(tmp_path)
    result = tune(find_recordings(recording), settings, GRID)
    assert [p.changes for p in result.points] == [{"events_per_frame": 10_000}, {"events_per_frame": 10}]
    assert [p.accuracy for p in result.points] == [0.0, pytest.approx(0.875)]
    assert result.points[1].latency_s == pytest.approx(0.0075)
    assert result.front == [1] and result.best == 1
    assert result.points[1].settings == settings  # the base already had events_per_frame 10


def test_ctrl_c_keeps_only_complete_points(tmp_path):
    recording, settings = write_hand_stream(tmp_path)
    second = tmp_path / "copy.aedat"
    second.write_bytes(recording.read_bytes())
    (tmp_path / "copy_labels.csv").write_bytes((tmp_path / "stream_labels.csv").read_bytes())

    # tasks run point by point: (10000, copy), (10000, stream), (10, copy) done, (10, stream) not run
    result = tune(find_recordings(tmp_path), settings, GRID, progress=InterruptedAt(3))
    assert result.not_run == 1
    assert [p.changes for p in result.points] == [{"events_per_frame": 10_000}]


def test_cli_tune_writes_the_best_setting_to_the_config_file(tmp_path, capsys):
    recording, settings = write_hand_stream(tmp_path)
    config = save_settings(settings.replace(events_per_frame=500, speed=4.0), tmp_path / "config.toml")
    grid = ["--events-per-frame", "10", "10000", "--clear-every", "2", "--mode", "periodic", "--smoothing", "1",
            "--min-output-spikes", "1", "--noise-filter", "off"]
    out = tmp_path / "tuning"
    assert main(["tune", str(recording), "--config", str(config), *grid, "--workers", "2", "-o", str(out),
                 "--no-progress"]) == 0
    assert load_settings(config) == settings.replace(speed=4.0)  # events_per_frame 10; the rest kept
    report = json.loads((out / "tune.json").read_text())
    assert report["best"] == {"events_per_frame": 10, "clear_every": 2, "mode": "periodic", "smoothing": 1,
                              "min_output_spikes": 1, "noise_filter": False}
    assert [(p["pareto"], p["best"]) for p in report["points"]] == [(True, True), (False, False)]
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "written to" in capsys.readouterr().out
    assert not (tmp_path / "user-config.toml").exists()

    save_settings(settings.replace(events_per_frame=500), config)
    before = config.read_text()
    assert main(["tune", str(recording), "--config", str(config), *grid, "--workers", "1", "-o", str(out),
                 "--no-progress", "--no-write"]) == 0
    assert config.read_text() == before
    assert main(["tune", str(recording), "--config", str(config), "--smoothing", "0", "-o", str(out)]) == 2
    assert "smoothing" in capsys.readouterr().err


def test_decision_policies_share_one_run_of_the_network_and_replay_exactly(tmp_path):
    from livegesture.evaluate.streaming import replay_policy, stream_tasks
    from livegesture.model.files import load_model
    from livegesture.pipeline.engine import decide_stream
    from livegesture.sources.aedat3 import read_aedat3

    recording, settings = write_hand_stream(tmp_path)
    policies = [settings.replace(min_output_spikes=m, smoothing=k, min_confidence=c, switch_margin=0.2)
                for m in (1, 2) for k in (1, 2) for c in (0.3, 0.9)]
    tasks = stream_tasks(find_recordings(recording), [*policies, settings.replace(events_per_frame=5)])
    assert [t.points for t in tasks] == [tuple(range(8)), (8,)]  # the network runs twice, not nine times
    network, data = load_model(settings.model).network, read_aedat3(recording)
    base = list(decide_stream((data.events,), data.sensor_size, network, settings))
    for policy in policies:
        direct = list(decide_stream((data.events,), data.sensor_size, network, policy))
        replayed = replay_policy(base, policy, network.num_outputs)
        assert [(d.label, d.t_us, round(d.confidence, 12)) for d in replayed] == \
            [(d.label, d.t_us, round(d.confidence, 12)) for d in direct]


def test_the_quiet_scene_gate_is_tuned_with_a_run_of_the_network_per_rate(tmp_path):
    """``min_event_rate`` acts in the engine, not in the replayed policy: a run per value. A gate
    above any frame's rate makes every decision "no gesture" (inside gestures all wrong, between
    them all right: balanced 0.5); the gate off gives the hand-worked 7/8."""
    from livegesture.evaluate.streaming import stream_tasks

    recording, settings = write_hand_stream(tmp_path)
    points = [settings.replace(min_event_rate=rate) for rate in (0.0, 5e6)]
    assert [t.points for t in stream_tasks(find_recordings(recording), points)] == [(0,), (1,)]
    result = tune(find_recordings(recording), settings, Grid.of({"min_event_rate": (0.0, 5e6)}))
    assert [p.score.frame_accuracy for p in result.points] == [pytest.approx(0.75), 0.0]
    assert [p.accuracy for p in result.points] == [pytest.approx(0.875), pytest.approx(0.5)]
    assert result.best == 0


def test_a_false_switch_budget_passes_over_a_flickering_point(tmp_path, capsys):
    from livegesture.evaluate.metrics import score_stream
    from livegesture.evaluate.tune import TunePoint, TuneResult
    from livegesture.pipeline.settings import PipelineSettings
    from livegesture.sources.labels import GestureSegment

    gesture = [GestureSegment(0, 0, 1_000)]
    times = [100, 200, 300, 400, 500, 600, 700, 800, 1_500]  # eight inside the gesture, one after it
    # flickers: 6 of 8 right, two switches to class 1; steady: 5 of 8 right, late, no switch
    flicker = score_stream(times, [0, 0, 1, 0, 0, 1, 0, 0, None], gesture, 2)
    steady = score_stream(times, [None, None, 0, 0, 0, 0, 0, None, None], gesture, 2)
    points = tuple(TunePoint({"smoothing": k}, PipelineSettings(smoothing=k), score)
                   for k, score in ((1, flicker), (4, steady)))

    def result(budget):
        return TuneResult("s", PipelineSettings(), Grid.of({"smoothing": (1, 4)}), points, (), (), 0, 0.0, budget)

    assert [p.accuracy for p in points] == [pytest.approx((6 / 8 + 1) / 2), pytest.approx((5 / 8 + 1) / 2)]
    assert [p.switches_per_gesture for p in points] == [2.0, 0.0]
    assert result(None).front == [0] and result(None).best == 0  # more accurate and sooner: it dominates
    assert result(2.0).best == 0 and result(1.5).best == 1 and result(0.0).best == 1
    assert result(1.5).to_dict()["best"] == {"smoothing": 4}
    assert TuneResult("s", PipelineSettings(), Grid.of({"smoothing": (1,)}), points[:1], (), (), 0, 0.0, 1.0).best is None


def test_cli_tune_with_a_budget_no_point_meets_leaves_the_config_alone(tmp_path, capsys):
    recording, settings = write_hand_stream(tmp_path)
    config = save_settings(settings.replace(events_per_frame=500), tmp_path / "config.toml")
    grid = ["--events-per-frame", "10", "--clear-every", "2", "--mode", "periodic", "--smoothing", "1",
            "--min-output-spikes", "1", "--noise-filter", "off"]
    out = tmp_path / "tuning"
    args = ["tune", str(recording), "--config", str(config), *grid, "--workers", "1", "-o", str(out), "--no-progress"]
    assert main([*args, "--max-false-switches", "-1"]) == 2
    assert "--max-false-switches must be 0 or more, got -1" in capsys.readouterr().err
    assert main([*args, "--no-write"]) == 0
    (point,) = json.loads((out / "tune.json").read_text())["points"]
    per_gesture = point["false_switches"] / point["gestures"]
    assert per_gesture > 0  # the hand-worked stream's wrong decision is a switch
    assert main([*args, "--max-false-switches", str(per_gesture / 2)]) == 1
    assert "false switches per gesture; the config file is left as it is" in capsys.readouterr().out
    assert load_settings(config).events_per_frame == 500
