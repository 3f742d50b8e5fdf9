"""Screenshots of the window on the shipped demo recording, for the README.

Runs the window in an X server (Qt's xcb platform) at real-time speed and saves what the X
server shows of it, at moments when the prediction is confident and right:

* ``docs/img/gui_prediction.png``: the display alone (settings panel hidden);
* ``docs/img/gui_controls.png``: with the settings panel and a recording in progress,
  the current gesture marked with its number key.

Usage, without a display: ``xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python
scripts/screenshots.py [--out docs/img]`` (Debian's ``xvfb``). The config file used is a
temporary one: the user's settings are neither read nor changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6 import QtCore, QtTest

from livegesture.commands import DEMO_RECORDING
from livegesture.display.text import LABEL_KEYS
from livegesture.gui.app import application, open_window
from livegesture.gui.window import MainWindow
from livegesture.pipeline.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SHOWCASE_CONFIDENCE = 0.7
"""The display shot waits for a right prediction with at least this confidence..."""
NEXT_GESTURE_CONFIDENCE = 0.5
"""...the settings shot for a right one of another gesture with at least this one."""
TIMEOUT_S = 40.0
CHECK_MS = 50
WIDE_WINDOW_SIZE = QtCore.QSize(1720, 900)
"""With the settings panel: wide enough that the images keep their size."""


def predicted(window: MainWindow) -> int | None:
    """The class shown (None: none yet, or no gesture)."""
    update = window.last_update
    return update.prediction.label if update is not None and update.prediction is not None else None


def confident_and_right(window: MainWindow, min_confidence: float) -> bool:
    display = window.display
    decision = display.prediction if display is not None else None
    if decision is None or display.true_label is None:
        return False
    return decision.label == display.true_label and decision.confidence >= min_confidence


def wait_for(app, condition, timeout_s: float = TIMEOUT_S) -> bool:
    """Run the event loop until ``condition()`` holds; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, CHECK_MS)
        if condition():
            return True
        time.sleep(CHECK_MS / 1000)
    return False


def save(window: MainWindow, path: Path, found: bool) -> None:
    """What the X server shows of the window (its client area), once the latest refresh is painted."""
    window.repaint()  # synchronous: the X server has the latest state before the grab
    window.screen().grabWindow(window.winId()).save(str(path))
    print(f"{path}{'' if found else ' (no confident, right prediction within the time limit)'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNG files")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        parser.error('needs an X display: run it as xvfb-run -a -s "-screen 0 1920x1080x24" ' + " ".join(sys.argv))
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # a real X window, not the offscreen platform
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["LIVEGESTURE_CONFIG"] = str(Path(scratch) / "config.toml")
        app = application()
        # as the demo opens it (the model's window and the tuned policy), on the fast backend
        window = open_window(str(DEMO_RECORDING), load_settings().replace(backend="fast", speed=1.0))
        window.dock.hide()
        save(window, args.out / "gui_prediction.png", wait_for(app, lambda: confident_and_right(window, SHOWCASE_CONFIDENCE)))

        window.resize(WIDE_WINDOW_SIZE)
        window.dock.show()
        window.start_recording(Path(scratch) / "session.aedat4")
        shown = predicted(window)
        found = wait_for(app, lambda: confident_and_right(window, NEXT_GESTURE_CONFIDENCE) and predicted(window) != shown)
        if found:
            QtTest.QTest.keyClick(window, LABEL_KEYS[predicted(window)])  # mark the gesture being made
            window.refresh()
        save(window, args.out / "gui_controls.png", found)
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
