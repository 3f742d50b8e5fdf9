"""Checks of the window that need a real X server: run by tests/test_gui_x11.py in Xvfb
(``QT_QPA_PLATFORM=xcb``), with keys typed through the X server by xdotool. Real fonts,
real geometry, real keyboard focus: what the offscreen platform does not have."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from livegesture.display.text import NO_SOURCE_TEXT, WAITING_TEXT
from livegesture.gui import window as window_module
from livegesture.gui.app import open_window
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources.labels import CLASS_NAMES, NO_GESTURE_NAME

if os.environ.get("QT_QPA_PLATFORM") != "xcb" or not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run by tests/test_gui_x11.py)", allow_module_level=True)

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_session.aedat4"
TIMEOUT_MS = 20_000
LIVE = PipelineSettings(backend="fast", speed=1.0)
SCREEN_ALLOWANCE = 80
"""Pixels of a screen's height a desktop takes for the title bar and a panel."""


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(tmp_path / "config.toml"))
    window = open_window(str(DEMO), LIVE)
    qtbot.addWidget(window)
    qtbot.waitExposed(window)
    yield window
    window.close()


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True, timeout=20).stdout


def test_the_window_is_a_real_x_window(window):
    assert QtGui.QGuiApplication.platformName() == "xcb"
    ids = xdotool("search", "--sync", "--onlyvisible", "--name", "^livegesture$").split()
    assert str(int(window.winId())) in ids


def test_space_typed_in_a_spin_box_pauses_the_replay_and_leaves_the_box_alone(window, qtbot):
    qtbot.waitUntil(lambda: window.last_update is not None and window.last_update.stats.events_in > 0,
                    timeout=TIMEOUT_MS)
    spin = window.settings_panel.controls["events_per_frame"]
    before = spin.text()
    xdotool("windowfocus", "--sync", str(int(window.winId())))
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=TIMEOUT_MS)
    xdotool("key", "space")  # through the X server: XTEST, as a keyboard would
    qtbot.waitUntil(lambda: window.pipeline.paused, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.state_label.text().startswith("paused"), timeout=TIMEOUT_MS)
    assert spin.text() == before and window.play_action.text() == "Play"
    xdotool("key", "space")
    qtbot.waitUntil(lambda: not window.pipeline.paused, timeout=TIMEOUT_MS)
    assert spin.text() == before


def test_every_name_fits_and_the_images_stay_put(window, qtbot):
    """Each name whole on at most two lines, broken between words, in the space the panel keeps
    for it: neither the images nor the bars move as names and texts change."""
    name = window.prediction.name
    metrics = QtGui.QFontMetrics(name.font())
    placed = lambda: (window.overlay_panel.geometry(), window.frame_panel.geometry(),  # noqa: E731
                      window.prediction.bars.geometry())
    before = placed()
    for text in (*CLASS_NAMES, NO_GESTURE_NAME, WAITING_TEXT, NO_SOURCE_TEXT):
        name.setText(text)
        qtbot.wait(20)
        room = name.contentsRect()
        needed = metrics.boundingRect(room, int(QtCore.Qt.TextFlag.TextWordWrap), text)
        assert needed.width() <= room.width() and needed.height() <= room.height(), text
        assert needed.height() < 3 * metrics.lineSpacing(), text  # two lines at most
        assert all(metrics.horizontalAdvance(word) <= room.width() for word in text.split()), text
        assert placed() == before, text
    window.prediction.accuracy.setText("running accuracy 100% (12,345 of 12,345 decisions during gestures)")
    window.prediction.truth.setText(f"true: {max(CLASS_NAMES, key=len)}  \u2718")
    qtbot.wait(100)
    assert placed()[:2] == before[:2]


def test_the_window_fits_a_1280_by_720_screen_and_its_settings_scroll_there(window, qtbot):
    """A 1920 x 1080 laptop at 150 % (or a 1366 x 768 one): the whole window on the screen, with
    room for a title bar and a panel; the settings, taller than that, scroll."""
    least = window.minimumSizeHint()
    assert least.width() <= 1280 and least.height() <= 720 - SCREEN_ALLOWANCE, least
    window.resize(1280, 720 - SCREEN_ALLOWANCE)
    qtbot.waitUntil(lambda: window.width() == 1280, timeout=TIMEOUT_MS)
    scroll = window.dock.widget()
    assert isinstance(scroll, QtWidgets.QScrollArea) and scroll.verticalScrollBar().maximum() > 0
    assert scroll.horizontalScrollBar().maximum() == 0  # as wide as its controls


def test_the_record_dialog_opens_in_the_recordings_folder(window, qtbot, tmp_path, monkeypatch):
    """Qt's own file dialog, shown in the X server: it opens where it is told only if that folder exists."""
    folder = tmp_path / "first time" / "recordings"
    monkeypatch.setattr(window_module, "DEFAULT_RECORDINGS_DIR", folder)
    seen = []

    def answer() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(dialog, QtWidgets.QFileDialog):
            QtCore.QTimer.singleShot(100, answer)  # not shown yet
            return
        seen.append((Path(dialog.directory().absolutePath()), dialog.selectedFiles()))
        dialog.reject()

    QtCore.QTimer.singleShot(100, answer)
    window.record_action.trigger()  # runs the dialog until answer() closes it
    assert len(seen) == 1 and seen[0][0] == folder
    assert Path(seen[0][1][0]).parent == folder and Path(seen[0][1][0]).name.startswith("gestures-")
    assert window.pipeline.recorder is None and not window.record_action.isChecked()
