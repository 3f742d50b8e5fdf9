"""The Qt window on shipped recordings (offscreen): frames, predictions, controls, recording,
errors in the window, and clean shutdown."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dv_processing as dv  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from livegesture.evaluate.metrics import score_stream  # noqa: E402
from livegesture.gui.images import BACKGROUND_RGB, frame_rgb  # noqa: E402
from livegesture.display.text import NO_SOURCE_HINT, NO_SOURCE_TEXT, WAITING_TEXT, accuracy_text, confidence_text  # noqa: E402
from livegesture.gui import window as window_module  # noqa: E402
from livegesture.gui.window import MainWindow  # noqa: E402
from livegesture.model.files import load_model  # noqa: E402
from livegesture.pipeline import engine as engine_module  # noqa: E402
from livegesture.pipeline.engine import decide_stream  # noqa: E402
from livegesture.pipeline.options import option_help  # noqa: E402
from livegesture.pipeline.settings import SETTING_SPECS, PipelineSettings, load_settings  # noqa: E402
from livegesture.sources import open_source  # noqa: E402
from livegesture.sources.base import EventSource  # noqa: E402
from livegesture.sources.camera import CameraError  # noqa: E402
from livegesture.sources.labels import CLASS_NAMES, NO_GESTURE_NAME, NUM_CLASSES, GestureSegment  # noqa: E402
from test_camera import SERIAL, FakeBus, FakeCamera  # noqa: E402 (the fake USB bus of the camera tests)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_session.aedat4"
TIMEOUT_MS = 20_000
REFRESHES = 300
FAST = PipelineSettings(backend="fast", speed=0.0, lossless=True)
"""As fast as possible and lossless: the decisions are those of decide_stream."""


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    """A config file of the test's own: the user's is never touched."""
    path = tmp_path / "config.toml"
    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(path))
    return path


@pytest.fixture
def make_window(qtbot, config):
    """Windows that are closed (threads stopped) at the end of the test."""
    windows = []

    def make(settings: PipelineSettings = FAST) -> MainWindow:
        window = MainWindow(settings, config)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def livegesture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("livegesture")]


def events_in(window: MainWindow) -> int:
    return window.last_update.stats.events_in if window.last_update else 0


def settle(qtbot, window: MainWindow) -> int:
    """Wait until a paused replay has handed over its last slice; the events handed over."""
    qtbot.waitUntil(lambda: window.pipeline.paused, timeout=TIMEOUT_MS)
    previous = [-1]

    def steady() -> bool:
        qtbot.wait(60)  # two display refreshes
        now = events_in(window)
        done = now == previous[0] and window.last_update.stats.event_queue_depth == 0
        previous[0] = now
        return done

    qtbot.waitUntil(steady, timeout=TIMEOUT_MS)
    return events_in(window)


def demo_events() -> np.ndarray:
    with open_source(DEMO) as source:
        return np.concatenate(list(source))


def test_window_runs_a_shipped_recording_and_scores_it(make_window, qtbot):
    window = make_window()
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: window.prediction.name.text() != WAITING_TEXT, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.last_update.finished, timeout=TIMEOUT_MS)
    window.refresh()

    overlay = window.overlay_panel.image.image
    frame = window.frame_panel.image.image
    assert overlay.shape == (128, 128, 3) and frame.shape == (63, 63, 3)
    assert (overlay != BACKGROUND_RGB.astype(np.uint8)).any(axis=2).sum() > 10  # events drawn
    np.testing.assert_array_equal(frame, frame_rgb(window.last_update.frame.data))  # the newest frame
    assert "events/s" in window.stats_label.text() and "frames/s" in window.stats_label.text()

    # the window's running accuracy is the evaluation's score of the lossless decisions
    model = load_model(FAST.model)
    decisions = list(decide_stream([demo_events()], (128, 128), model.network, FAST))
    labels = open_source(DEMO).labels
    expected = score_stream([d.t_us for d in decisions], [d.label for d in decisions], labels, NUM_CLASSES)
    correct, total = sum(g.correct for g in expected.gestures), sum(g.decisions for g in expected.gestures)
    assert total > 0 and correct / total == pytest.approx(expected.frame_accuracy)
    assert window.prediction.accuracy.text() == accuracy_text(correct, total)
    last = decisions[-1]
    assert window.prediction.bars.scores.tolist() == pytest.approx(last.scores.tolist())
    assert window.prediction.truth.text().startswith("true:")
    # the timeline: one coloured stretch per run of equal decisions, the labels beneath
    predicted = window.timeline_plot.rows[1.0].opts
    truth = window.timeline_plot.rows[0.0].opts
    assert len(predicted["x0"]) >= 1 and len(truth["x0"]) == len(labels)
    assert window.play_action.text() == "Play"  # the end of the replay: Play starts it again
    finished = window.pipeline
    window.play_action.trigger()
    assert window.pipeline is not finished and window.play_action.text() == "Pause"
    assert window.prediction.name.text() == WAITING_TEXT and window.now_us == 0
    qtbot.waitUntil(lambda: window.prediction.name.text() != WAITING_TEXT, timeout=TIMEOUT_MS)


def test_controls_change_the_running_pipeline_and_persist(make_window, qtbot, config):
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    panel = window.settings_panel
    panel.controls["events_per_frame"].setValue(1500)
    panel.controls["clear_every"].setValue(8)
    panel.controls["drain_steps"].setValue(4)
    panel.controls["frames_per_window"].setValue(6)
    panel.controls["noise_filter"].setChecked(True)
    window.speed.setCurrentIndex(window.speed.findData(2.0))
    window.speed.activated.emit(window.speed.currentIndex())
    settings = window.pipeline.settings
    assert (settings.events_per_frame, settings.clear_every, settings.drain_steps, settings.frames_per_window,
            settings.noise_filter, settings.speed) == (1500, 8, 4, 6, True, 2.0)
    assert window.pipeline.replay.speed == 2.0

    # frames now come every 1500 events (at least the last one completed after the change)
    qtbot.waitUntil(lambda: window.last_update is not None and window.last_update.stats.frames > 3,
                    timeout=TIMEOUT_MS)

    # an invalid combination is refused in the window, and the control goes back
    panel.controls["clear_every"].setValue(1)
    panel.controls["mode"].setCurrentText("staggered")
    assert "clear_every" in window.banner.message.text() and window.banner.isVisible()
    assert panel.controls["mode"].currentText() == "periodic" and window.pipeline.settings.mode == "periodic"
    panel.controls["clear_every"].setValue(8)

    window.close()
    assert load_settings(config) == settings.replace(clear_every=8)


def test_a_backend_that_cannot_run_the_model_is_reported_and_reverted(make_window, qtbot):
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    window.settings_panel.controls["backend"].setCurrentText("simplesim")  # dense matrices: refused for this net
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT_MS)
    assert "simpleSim" in window.banner.message.text() and "fast" in window.banner.message.text()
    qtbot.waitUntil(lambda: window.settings_panel.controls["backend"].currentText() == "fast", timeout=TIMEOUT_MS)
    assert window.pipeline.settings.backend == "fast" and window.last_update.running


def test_pause_step_and_resume(make_window, qtbot):
    # lossless: a step releases a burst of replay slices, which a busy machine's live queue may drop
    window = make_window(FAST.replace(speed=1.0))
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: events_in(window) > 0, timeout=TIMEOUT_MS)
    window.play_action.trigger()
    assert window.play_action.text() == "Play" and window.step_action.isEnabled()
    handed_over = settle(qtbot, window)
    frames = window.last_update.stats.frames
    qtbot.wait(150)
    assert events_in(window) == handed_over  # paused: nothing more

    window.step_action.trigger()
    qtbot.waitUntil(lambda: window.last_update.stats.frames == frames + 1, timeout=TIMEOUT_MS)
    settle(qtbot, window)
    assert window.last_update.stats.frames == frames + 1  # one frame's worth of events, no more
    assert window.last_update.frame.index == frames  # and the image shows it (0-based index)

    window.play_action.trigger()
    assert window.play_action.text() == "Pause" and not window.step_action.isEnabled()
    qtbot.waitUntil(lambda: window.last_update.stats.frames > frames + 2, timeout=TIMEOUT_MS)


def test_recording_with_label_keys_round_trips(make_window, qtbot, tmp_path):
    window = make_window(FAST.replace(speed=2.0, lossless=False))
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: events_in(window) > 0, timeout=TIMEOUT_MS)
    window.pipeline.pause()
    start = settle(qtbot, window)
    path = tmp_path / "mine.aedat4"
    assert window.start_recording(path)

    def run_until(more: int) -> int:
        before = events_in(window)
        window.pipeline.resume()
        qtbot.waitUntil(lambda: events_in(window) > before + more, timeout=TIMEOUT_MS)
        window.pipeline.pause()
        return settle(qtbot, window)

    first = run_until(3_000)
    qtbot.keyClick(window, "3")  # left hand wave (class 3 in the label file, 2 inside)
    assert "left hand wave" in window.recording_label.text()
    second = run_until(4_000)
    qtbot.keyClick(window, "-")  # other gestures (class 11): ends the left hand wave
    third = run_until(2_000)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)  # ends it
    end = run_until(1_000)
    window.record_action.trigger()  # stop: finalise the file and write the labels
    assert window.pipeline.recorder is None and not window.record_action.isChecked()
    assert "mine_labels.csv" in window.statusBar().currentMessage()

    every = demo_events()
    t = every["t"]
    with open_source(path) as recording:
        recorded = np.concatenate(list(recording))
        labels = recording.labels
    np.testing.assert_array_equal(recorded, every[start:end])
    assert labels == [GestureSegment(2, int(t[first - 1]), int(t[second - 1])),
                      GestureSegment(10, int(t[second - 1]), int(t[third - 1]))]


class FailingSource(EventSource):
    """A camera that delivers some of the demo's events and is then unplugged."""

    name = "camera DVS128_1234"
    live = True

    def __init__(self, batches: int) -> None:
        with open_source(DEMO) as demo:
            self.sensor_size = demo.sensor_size
            self.batches = [batch for _, batch in zip(range(batches), demo)]

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self.batches
        raise CameraError("camera DVS128_1234 was unplugged")


def test_errors_appear_in_the_window(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(b"this is not a recording")
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(bad), ""))
    open_action = next(a for a in window.findChildren(QtWidgets.QToolBar)[0].actions() if a.text().startswith("Open"))
    open_action.trigger()
    assert window.banner.isVisible() and window.pipeline is None
    assert window.banner.message.text() == f"source: {bad}: not an aedat4 file: it does not start with '#!AER-DAT4.0'"
    assert window.statusBar().currentMessage() == window.banner.message.text()

    assert not window.open_source("camera")  # no camera on this machine
    assert "no camera found" in window.banner.message.text()

    # a camera lost while running: the pipeline stops and says why
    assert window.run_source(FailingSource(batches=5), "camera")
    assert not window.banner.isVisible()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT_MS)
    assert window.banner.message.text() == "source: camera DVS128_1234 was unplugged"
    assert not window.last_update.running

    # a bad model: the window keeps the source it had
    window.change_setting("model", str(bad))
    assert window.settings.model == str(bad)  # no pipeline runs: kept for the next one
    assert not window.open_source(str(DEMO))
    assert window.banner.message.text().startswith(f"model: {bad}")


def test_an_unplugged_camera_is_shown_until_it_is_back(make_window, qtbot, monkeypatch):
    """Only the USB device is faked (test_camera's fake bus); the camera source is the real one."""
    bus = FakeBus()
    monkeypatch.setattr(dv.io.camera, "discover", bus.discover)
    monkeypatch.setattr(dv.io.camera, "open", bus.open)
    batches = [batch for _, batch in zip(range(40), open_source(DEMO))]
    bus.plug(FakeCamera(batches))
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source("camera")
    assert not window.play_action.isEnabled() and not window.speed.isEnabled()  # nothing to pause live
    qtbot.waitUntil(lambda: events_in(window) == sum(len(b) for b in batches), timeout=TIMEOUT_MS)
    bus.unplug()
    qtbot.waitUntil(window.banner.isVisible, timeout=TIMEOUT_MS)
    assert window.banner.message.text() == (f"DVS128_{SERIAL}: disconnected: camera stopped (unplugged?); "
                                            "trying to reconnect")
    assert window.last_update.running  # the pipeline waits for the camera
    bus.plug(FakeCamera([]))
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage() == f"DVS128_{SERIAL}: connected again"
    window.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("livegesture", "camera"))]


def test_closing_stops_every_thread_and_finishes_the_recording(make_window, qtbot, tmp_path, monkeypatch):
    before = set(threading.enumerate())
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    target = str(tmp_path / "closing.aedat4")
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *args, **kwargs: (target, ""))
    window.record_action.trigger()  # the Record button asks where, then records
    assert window.record_action.isChecked() and str(window.pipeline.recorder.path) == target
    qtbot.waitUntil(lambda: events_in(window) > 0, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, "1")
    assert len(livegesture_threads()) == 3
    window.close()
    assert livegesture_threads() == []
    assert set(threading.enumerate()) <= before
    with open_source(tmp_path / "closing.aedat4") as recording:
        assert sum(len(b) for b in recording) > 0
        assert [s.label for s in recording.labels] in ([0], [])  # the running gesture ended at close


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_the_display_loop_keeps_its_references_to_none(make_window, qtbot):
    """PySide6-Essentials 6.12.0 drops a reference to None on each call of a Qt method that returns
    nothing (on Python <= 3.11, where None is reference-counted): about 18 per refresh, so the
    window drained None and aborted ("none_dealloc") after about two minutes. 6.11.3 does not."""
    window = make_window(FAST.replace(speed=1.0))
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: events_in(window) > 0, timeout=TIMEOUT_MS)
    before = sys.getrefcount(None)
    for _ in range(REFRESHES):
        window.refresh()
    assert sys.getrefcount(None) > before - REFRESHES  # the pipeline threads hold a few Nones at any time


@pytest.mark.parametrize("headless", [False, True])
def test_run_opens_the_window_unless_headless(qtbot, config, monkeypatch, capsys, headless):
    from livegesture.cli import main

    monkeypatch.setenv("DISPLAY", ":99")
    before = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    argv = ["run", str(DEMO), "--duration", "1", "--speed", "0"] + (["--headless"] if headless else [])
    assert main(argv) == 0
    opened = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w not in before]
    assert len(opened) == (0 if headless else 1)
    assert ("events/s" in capsys.readouterr().out) == headless  # the headless report, only without a window
    for window in opened:
        assert window.source_spec == str(DEMO) and window.last_update.stats.events_in > 0
        window.deleteLater()


def test_demo_opens_the_window_when_there_is_a_display(qtbot, config, monkeypatch):
    from livegesture.commands import demo

    monkeypatch.setenv("DISPLAY", ":99")
    before = set(threading.enumerate())
    assert demo(argparse.Namespace(headless=False, duration=1.0)) == 0
    windows = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    assert windows and not any(w.isVisible() for w in windows)
    assert windows[-1].last_update.stats.events_in > 0 and windows[-1].source_spec == str(DEMO)
    assert set(threading.enumerate()) <= before
    assert config.exists()  # the settings were saved on close
    for window in windows:
        window.deleteLater()


def test_a_corrupt_aedat4_packet_is_reported_in_the_banner(make_window, qtbot, tmp_path):
    """dv-processing hung holding the GIL on such a file, freezing the window for good."""
    import lz4.frame

    from livegesture.sources.aedat4 import write_aedat4
    from test_aedat4 import corrupt_middle_packet, regular_events

    path = tmp_path / "corrupt.aedat4"
    write_aedat4(path, regular_events(200_000), (128, 128))
    offset = corrupt_middle_packet(path, RuntimeError, lz4.frame.decompress)
    window = make_window()
    assert window.open_source(str(path))
    qtbot.waitUntil(window.banner.isVisible, timeout=5_000)
    assert window.banner.message.text().startswith(f"source: {path}: corrupt event packet at byte {offset} (LZ4: ")


def test_a_recording_from_another_sensor_than_the_models_is_warned_about_in_the_banner(make_window, qtbot, tmp_path):
    """A model trained on a DAVIS346: the DVS128 demo is warned about; a DAVIS346 recording is not."""
    from livegesture.events import make_events
    from livegesture.sources.aedat3 import write_aedat3
    from test_model_files import shipped_model_trained_on

    path = tmp_path / "davis.aedat"
    n = 40_000
    write_aedat3(path, make_events(np.arange(n) * 25, np.arange(n) % 346, np.arange(n) % 260, np.arange(n) % 2),
                 (346, 260))
    window = make_window(FAST.replace(model=str(shipped_model_trained_on(tmp_path, (346, 260)))))
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(window.banner.isVisible, timeout=TIMEOUT_MS)
    assert window.banner.message.text().startswith("the model was trained on a 346x260 sensor, not this 128x128 one")
    assert window.open_source(str(path))  # the model's own sensor: nothing to say
    qtbot.waitUntil(lambda: events_in(window) > 0, timeout=TIMEOUT_MS)
    assert not window.banner.isVisible()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_and_ctrl_c_close_the_window_like_its_close_button(tmp_path, signum):
    import subprocess

    config = tmp_path / "config.toml"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LIVEGESTURE_CONFIG": str(config),
           "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "livegesture", "gui", str(DEMO), "--duration", "60"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(6)  # the window is up and replaying
    child.send_signal(signum)
    _, err = child.communicate(timeout=15)
    assert child.returncode == 0 and "Traceback" not in err
    assert config.exists()  # saved on close, as the close button does


def test_the_region_of_interest_is_drawn_and_dragged_on_a_larger_sensor(make_window, qtbot, tmp_path):
    from livegesture.events import make_events
    from livegesture.sources.aedat2 import write_aedat2

    rng = np.random.default_rng(1)
    n = 50_000
    path = tmp_path / "davis.aedat"
    write_aedat2(path, make_events(np.sort(rng.integers(0, 5_000_000, n)), rng.integers(0, 346, n),
                                   rng.integers(0, 260, n), rng.integers(0, 2, n)),
                 "eu.seebetter.ini.chips.davis.Davis346B")
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    assert not window.overlay_panel.roi.isVisible()  # a DVS128: the whole sensor, nothing to draw
    assert window.open_source(str(path))
    roi = window.overlay_panel.roi
    assert roi.isVisible() and tuple(roi.pos()) == (43, 0) and tuple(roi.size()) == (260, 260)
    assert "from 260\u00d7260 at (43, 0)" in window.frame_panel.title.text
    roi.setPos((10, 0))  # a drag ends with sigRegionChangeFinished
    assert window.pipeline.settings.roi == (10, 0, 260)
    assert "from 260\u00d7260 at (10, 0)" in window.frame_panel.title.text
    panel = window.settings_panel
    panel.controls["noise_filter_kind"].setCurrentText("k-nearest")
    panel.controls["noise_filter_window_us"].setValue(5000)
    panel.controls["noise_filter"].setChecked(True)
    settings = window.pipeline.settings
    assert (settings.noise_filter, settings.noise_filter_kind, settings.noise_filter_window_us) == (
        True, "k-nearest", 5000)
    qtbot.waitUntil(lambda: "noise filter keeps" in window.stats_label.text(), timeout=TIMEOUT_MS)


def test_before_any_source_the_window_says_how_to_open_one(make_window):
    window = make_window()
    assert window.prediction.name.text() == NO_SOURCE_TEXT
    assert window.prediction.confidence.text() == NO_SOURCE_HINT == window.state_label.text()
    assert not window.redrawing  # nothing to draw


def test_the_confidence_says_what_it_is_and_the_timeline_has_a_key(make_window, qtbot):
    window = make_window()
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: window.last_update is not None and window.last_update.finished, timeout=TIMEOUT_MS)
    decision = window.last_update.prediction
    assert window.prediction.confidence.text() == confidence_text(decision)
    assert "spike" in window.prediction.confidence.text() or decision.quiet
    assert "calibrated" in window.prediction.confidence.toolTip()
    legend = window.legend.text().replace("&nbsp;", " ")
    assert all(name in legend for name in (*CLASS_NAMES, NO_GESTURE_NAME))
    assert [legend.index(name) for name in CLASS_NAMES] == sorted(legend.index(name) for name in CLASS_NAMES)


def test_the_redraw_stops_when_the_replay_has_ended_and_starts_again_with_it(make_window, qtbot):
    window = make_window()
    assert window.open_source(str(DEMO))
    assert window.redrawing
    qtbot.waitUntil(lambda: not window.redrawing, timeout=TIMEOUT_MS)
    assert window.last_update.finished and window.state_label.text().startswith("end of")
    window.play_action.trigger()
    assert window.redrawing


def test_space_in_a_spin_box_pauses_instead_of_blanking_it(make_window, qtbot):
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: events_in(window) > 0, timeout=TIMEOUT_MS)
    spin = window.settings_panel.controls["clear_every"]
    spin.setFocus()
    qtbot.keyClick(spin, QtCore.Qt.Key.Key_Space)
    assert window.pipeline.paused and spin.text() == "10" and window.play_action.text() == "Play"
    qtbot.waitUntil(lambda: window.state_label.text().startswith("paused"), timeout=TIMEOUT_MS)
    qtbot.keyClick(spin, QtCore.Qt.Key.Key_Space)
    assert not window.pipeline.paused and spin.text() == "10"
    qtbot.waitUntil(lambda: window.state_label.text().startswith("playing"), timeout=TIMEOUT_MS)


def test_record_opens_in_an_existing_folder_and_stop_reports_what_was_written(make_window, qtbot, tmp_path,
                                                                             monkeypatch):
    folder = tmp_path / "not yet" / "recordings"
    monkeypatch.setattr(window_module, "DEFAULT_RECORDINGS_DIR", folder)
    asked = []

    def save_dialog(parent, caption, proposed, filter):
        asked.append((Path(proposed).parent, Path(proposed).parent.is_dir()))
        return proposed, ""

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", save_dialog)
    window = make_window(FAST.replace(speed=2.0, lossless=False))
    assert window.open_source(str(DEMO))
    window.record_action.trigger()
    assert asked == [(folder, True)]  # the dialog is told a folder that exists, so it opens there
    recorder = window.pipeline.recorder
    qtbot.keyClick(window, "1")
    qtbot.waitUntil(lambda: recorder.events_written > 5_000, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)
    assert "1 gesture marked" in window.recording_label.text()
    window.record_action.trigger()
    with open_source(recorder.path) as recording:
        written = sum(len(batch) for batch in recording)
    assert written == recorder.events_written > 5_000
    assert window.statusBar().currentMessage() == (f"recorded {written:,} events to {recorder.path.name}, "
                                                   f"1 gesture to {recorder.labels_path.name}")
    assert str(recorder.labels_path) in window.recording_label.text()  # the whole path, wrapped


def test_a_refused_backend_asked_for_twice_is_refused_twice_and_auto_is_kept(make_window, qtbot, config):
    window = make_window(FAST.replace(backend="auto", speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    combo = window.settings_panel.controls["backend"]
    for _ in range(2):
        window.banner.hide()
        combo.setCurrentText("cri")  # no CRI hardware here
        qtbot.waitUntil(window.banner.isVisible, timeout=TIMEOUT_MS)
        assert window.banner.message.text().startswith("settings: ") and "CRI" in window.banner.message.text()
        qtbot.waitUntil(lambda: combo.currentText() == "auto", timeout=TIMEOUT_MS)
        assert window.settings.backend == "auto" and window.last_update.backend == "fast"
    window.close()
    assert load_settings(config).backend == "auto"


def test_a_slow_backend_switch_shows_that_it_loads(make_window, qtbot, monkeypatch):
    release = threading.Event()
    real = engine_module.make_backend

    def slow(name, network, **options):
        if name == "fast-sparse":
            release.wait(TIMEOUT_MS / 1000)
        return real(name, network, **options)

    monkeypatch.setattr(engine_module, "make_backend", slow)
    window = make_window(FAST.replace(speed=1.0, lossless=False))
    assert window.open_source(str(DEMO))
    qtbot.waitUntil(lambda: window.last_update is not None and window.last_update.backend == "fast",
                    timeout=TIMEOUT_MS)  # the first engine runs before the switch
    panel = window.settings_panel
    panel.controls["backend"].setCurrentText("fast-sparse")
    qtbot.waitUntil(lambda: window.state_label.text().startswith("loading backend fast-sparse"), timeout=TIMEOUT_MS)
    assert not panel.controls["backend"].isEnabled() and not panel.controls["model"].isEnabled()
    assert panel.controls["backend"].currentText() == "fast-sparse" and window.last_update.backend == "fast"
    release.set()
    qtbot.waitUntil(lambda: window.last_update.backend == "fast-sparse", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: panel.controls["backend"].isEnabled(), timeout=TIMEOUT_MS)
    assert window.settings.backend == "fast-sparse"
    qtbot.waitUntil(lambda: window.state_label.text().endswith("(fast-sparse backend)"), timeout=TIMEOUT_MS)


def test_the_panel_is_the_schema(make_window):
    panel = make_window().settings_panel
    for name, control in panel.controls.items():
        spec = SETTING_SPECS[name]
        assert option_help(spec) == control.toolTip() or name == "model"
        if isinstance(control, QtWidgets.QAbstractSpinBox):
            assert (control.minimum(), control.maximum()) == (spec.low, spec.high)
        if isinstance(control, QtWidgets.QComboBox):
            assert tuple(control.itemText(k) for k in range(control.count())) == spec.choices
    assert set(panel.controls) == set(SETTING_SPECS) - {"speed", "roi"}  # the toolbar's and the event view's


def test_the_remote_field_switches_to_a_server_and_an_unreachable_one_is_reported(make_window, qtbot, monkeypatch,
                                                                                   tmp_path):
    from livegesture.pipeline.remote.server import Server

    monkeypatch.setattr("livegesture.pipeline.remote.client.CONNECT_TIMEOUT_S", 0.5)
    token = tmp_path / "remote.token"
    token.write_text("gui-token\n")
    monkeypatch.setenv("LIVEGESTURE_TOKEN_FILE", str(token))
    server = Server(load_model(FAST.model).network, FAST, "gui-token", port=0, log=lambda line: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        window = make_window(FAST.replace(speed=1.0, lossless=False))
        assert window.open_source(str(DEMO))
        field = window.settings_panel.controls["remote"]
        field.setText("127.0.0.1:1")
        field.editingFinished.emit()
        qtbot.waitUntil(lambda: "no answer from 127.0.0.1:1" in window.banner.message.text(), timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: field.text() == "" and window.pipeline.settings.remote == "", timeout=TIMEOUT_MS)
        field.setText(f"127.0.0.1:{server.port}")
        field.editingFinished.emit()
        qtbot.waitUntil(lambda: bool(server.sessions), timeout=TIMEOUT_MS)
        decided = window.last_update.stats.decisions
        qtbot.waitUntil(lambda: window.last_update.stats.decisions > decided, timeout=TIMEOUT_MS)
        assert window.pipeline.settings.remote == f"127.0.0.1:{server.port}"
        window.close()
    finally:
        server.stop()
        thread.join(5)


def test_a_name_takes_the_narrowest_of_one_line_or_two_and_one_word_names_work(qtbot):
    """The prediction panel's width rule, against widths measured by hand: a long name broken
    at its best space, a one-word name (a model trained on other classes) whole."""
    from PySide6 import QtGui

    from livegesture.gui.widgets import PredictionPanel, two_line_width

    metrics = QtGui.QFontMetrics(QtGui.QFont())
    advance = metrics.horizontalAdvance
    assert two_line_width(metrics, "right arm counter-clockwise") == advance("counter-clockwise")
    assert two_line_width(metrics, "clap") == advance("clap")
    panel = PredictionPanel(("clap", "wave", "idle"))
    qtbot.addWidget(panel)
    assert panel.class_names == ("clap", "wave", "idle")
