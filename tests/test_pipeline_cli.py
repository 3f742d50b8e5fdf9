"""``livegesture run --headless`` and ``demo`` end to end on a shipped recording."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from livegesture.cli import build_parser, main
from livegesture.pipeline.options import option_help, settings_from_args
from livegesture.pipeline.settings import CONFIG_ENV, SETTING_SPECS, load_settings
from livegesture.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "recordings" / "demo_fluorescent.aedat4"


@pytest.fixture(scope="module")
def recording_events() -> int:
    with open_source(RECORDING) as source:
        return sum(len(batch) for batch in source)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch) -> Path:
    """Never read or write the user's real config file."""
    path = tmp_path / "config.toml"
    monkeypatch.setenv(CONFIG_ENV, str(path))
    return path


def done_line(out: str) -> re.Match:
    match = re.search(r"^done: ([\d,]+) events, ([\d,]+) frames \(([\d,]+) stepped, (\d+) dropped\), "
                      r"(\d+) decisions", out, flags=re.MULTILINE)
    assert match, out
    return match


def test_lossless_headless_run_processes_the_whole_recording(capsys, recording_events, tmp_path):
    config = tmp_path / "mine.toml"
    rc = main(["run", str(RECORDING), "--headless", "--speed", "0", "--lossless", "--backend", "fast",
               "--clear-every", "5", "--config", str(config), "--save-config"])
    out = capsys.readouterr().out
    assert rc == 0
    events, frames, stepped, dropped, decisions = (int(g.replace(",", "")) for g in done_line(out).groups())
    epf = load_settings().events_per_frame
    assert (events, frames, stepped, dropped) == (recording_events, recording_events // epf, frames, 0)
    assert decisions == frames // 5
    assert f"settings saved to {config}" in out
    saved = load_settings(config)
    assert (saved.clear_every, saved.speed, saved.lossless, saved.backend) == (5, 0.0, True, "fast")


def test_settings_come_from_the_config_file_and_options_override_them(capsys, private_config):
    private_config.write_text("[pipeline]\nclear_every = 4\nspeed = 0.0\nlossless = true\nbackend = \"fast\"\n")
    assert main(["run", str(RECORDING), "--headless", "--drain-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "windows of 4 frames + 2 drain steps" in out
    _, frames, _, _, decisions = (int(g.replace(",", "")) for g in done_line(out).groups())
    assert decisions == frames // 4


def test_paced_headless_run_prints_the_running_prediction_once_a_second(capsys):
    start = time.monotonic()
    assert main(["run", str(RECORDING), "--headless", "--speed", "4", "--duration", "2.2", "--backend", "fast"]) == 0
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    lines = re.findall(r"^ +(\d+\.\d) s  (.*)$", out, flags=re.MULTILINE)
    assert len(lines) >= 2 and elapsed < 6
    assert all("events/s" in text and "latency" in text for _, text in lines)
    named = [text for _, text in lines if "true:" in text]
    assert named, out
    done_line(out)


@pytest.mark.parametrize("options, message", [
    (["--clear-every", "0"], "setting clear_every must be in 1-1,000"),
    (["--mode", "sometimes"], "setting mode must be one of periodic, staggered"),
    (["--model", "nowhere.npz"], "nowhere.npz: no such model file"),
    (["--drain-steps", "101"], "setting drain_steps must be in 0-100, got 101"),
    (["--events-per-frame", "10000001"], "setting events_per_frame must be in 1-10,000,000"),
    (["--noise-filter-kind", "median"], "setting noise_filter_kind must be one of background-activity, fast-decay"),
    (["--noise-filter-window-us", "0"], "setting noise_filter_window_us must be in 1-10,000,000, got 0"),
    (["--roi", "0", "0", "200"], "does not fit the 128x128 sensor"),
    (["--roi", "0", "0", "0"], "setting roi must have a SIDE of at least 1"),
])
def test_bad_settings_are_one_line_errors(capsys, options, message):
    assert main(["run", str(RECORDING), "--headless", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_options_are_the_settings_schema():
    parsers = build_parser()._subparsers._group_actions[0].choices

    def options(command: str) -> dict[str, str]:
        return {action.dest: action.help for action in parsers[command]._actions if action.dest in SETTING_SPECS}
    assert options("run") == {name: option_help(spec) for name, spec in SETTING_SPECS.items()}
    assert set(options("eval")) == set(SETTING_SPECS) - {"speed", "lossless"}  # a live run's only
    assert set(options("gui")) == {"model", "backend", "remote"} and set(options("tune")) == {"model", "backend"}
    assert option_help(SETTING_SPECS["smoothing"]).endswith("(1-100)")
    assert set(options("info")) == {"roi"}


def test_the_roi_option_takes_x_y_side_into_the_tuple_setting(private_config):
    parser = build_parser()
    roi = next(action for action in parser._subparsers._group_actions[0].choices["run"]._actions
               if action.dest == "roi")
    assert (roi.nargs, roi.metavar) == (3, ("X", "Y", "SIDE")) and roi.help.endswith("(0-65,535)")
    args = parser.parse_args(["run", str(RECORDING), "--roi", "4", "5", "100"])
    assert settings_from_args(args).roi == (4, 5, 100) == load_settings(None, {"roi": [4, 5, 100]}).roi
    with pytest.raises(SystemExit):  # argparse: X Y SIDE, three numbers
        parser.parse_args(["run", str(RECORDING), "--roi", "4", "5"])


def test_demo_still_runs_headless(capsys):
    assert main(["demo", "--headless", "--duration", "1"]) == 0
    assert "demo_session.aedat4" in capsys.readouterr().out


def test_ctrl_c_stops_cleanly(private_config):
    env = {**os.environ, CONFIG_ENV: str(private_config), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "livegesture", "run", str(RECORDING), "--headless",
                                "--backend", "fast"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=ROOT)
    header = process.stdout.readline()
    assert "demo_fluorescent.aedat4" in header
    process.stdout.readline()                  # the first progress line: the pipeline is running
    process.send_signal(signal.SIGINT)
    try:
        rc = process.wait(timeout=60)  # a hang, not a slow machine, fails it
    finally:
        process.kill()
    assert rc == 130 and "Traceback" not in process.stderr.read()


def test_a_recording_from_another_sensor_than_the_models_is_warned_about(capsys, tmp_path):
    """The shipped (DVS128) model sees a DAVIS346 recording through its ROI, as trained: nothing to
    say; a model trained on a DAVIS346 is warned about, once, on a DVS128 recording."""
    from livegesture.events import make_events
    from livegesture.sources.aedat3 import write_aedat3
    from test_model_files import shipped_model_trained_on

    path = tmp_path / "davis.aedat"
    n = 40_000
    write_aedat3(path, make_events(np.arange(n) * 25, np.arange(n) % 346, np.arange(n) % 260, np.arange(n) % 2),
                 (346, 260))
    assert main(["run", str(path), "--headless", "--speed", "0", "--backend", "fast"]) == 0
    assert "warning" not in capsys.readouterr().out
    davis_model = shipped_model_trained_on(tmp_path, (346, 260))
    assert main(["run", str(RECORDING), "--headless", "--speed", "0", "--backend", "fast", "--duration", "1",
                 "--model", str(davis_model)]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: the model was trained on a 346x260 sensor, not this 128x128 one") == 1


def test_a_jaer_davis_recording_with_a_reset_runs_headless_through_its_roi(capsys, tmp_path):
    """The shipped DVS128 session as a DAVIS346 jAER file: moved into the default ROI (scale
    260:128), then restarted mid-way (a timestamp reset): with --on-reset rebase every event
    inside the ROI is integrated, with the noise filter's share in the figures."""
    import numpy as np

    from livegesture.sources import read_recording
    from livegesture.sources.aedat2 import write_aedat2

    events = read_recording(RECORDING).events[:60_000].copy()
    events["x"] = 43 + events["x"].astype(np.int64) * 2  # inside the centred 260x260 square of 346x260
    events["y"] = events["y"].astype(np.int64) * 2
    half = len(events) // 2
    path = tmp_path / "davis.aedat"
    write_aedat2(path, events[:half], "eu.seebetter.ini.chips.davis.Davis346B")
    second = tmp_path / "second.aedat"
    restarted = events[half:].copy()
    restarted["t"] -= int(restarted["t"][0]) - 5  # the camera restarted: time starts again near 0
    write_aedat2(second, restarted, "eu.seebetter.ini.chips.davis.Davis346B")
    path.write_bytes(path.read_bytes() + second.read_bytes()[second.read_bytes().index(b"Header\r\n") + 8:])
    args = ["run", str(path), "--headless", "--speed", "0", "--lossless", "--backend", "fast", "--noise-filter"]
    assert main(args) == 2
    assert "timestamp reset at event 30,000" in capsys.readouterr().err
    assert main([*args, "--on-reset", "rebase", "--no-noise-filter"]) == 0
    out = capsys.readouterr().out
    assert "346x260, the network sees 260x260 at (43, 0) of the 346x260 sensor" in out
    events_in, frames = (int(g.replace(",", "")) for g in done_line(out).groups()[:2])
    assert events_in == len(events) and frames == len(events) // load_settings().events_per_frame
    assert main([*args, "--on-reset", "rebase"]) == 0
    assert "noise filter keeps" in capsys.readouterr().out
