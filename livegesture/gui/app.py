"""Starting the GUI: the Qt application, its look, and the ``livegesture gui`` handler."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from livegesture.gui.widgets import FOREGROUND, PANEL_BACKGROUND, dark_palette
from livegesture.gui.window import MainWindow
from livegesture.pipeline.options import settings_from_args
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources.resets import OnReset

WINDOW_SIZE = (1500, 900)
"""The window's first size, or the screen's where that is smaller."""
MS_PER_S = 1000
CLOSING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def application() -> QtWidgets.QApplication:
    """The Qt application (made once), dark Fusion style."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["livegesture"])
    app.setApplicationName("livegesture")
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    pg.setConfigOptions(background=PANEL_BACKGROUND, foreground=FOREGROUND, antialias=True)
    return app


def open_window(source: str | None, settings: PipelineSettings, config_path: str | Path | None = None,
                on_reset: OnReset = "error") -> MainWindow:
    """A shown main window running on ``source`` (None: no source yet; a source that cannot
    be opened shows its error in the window); ``on_reset``: what recordings' timestamp resets do."""
    application()
    window = MainWindow(settings, config_path)
    window.on_reset = on_reset
    screen = window.screen().availableGeometry()
    window.resize(min(WINDOW_SIZE[0], screen.width()), min(WINDOW_SIZE[1], screen.height()))
    window.show()
    if source is not None:
        window.open_source(source)
    return window


def run_gui(source: str | None, settings: PipelineSettings, config_path: str | Path | None = None,
            duration_s: float | None = None, on_reset: OnReset = "error") -> int:
    """Open the window and run until it is closed (or ``duration_s`` of wall time passes)."""
    app = application()
    window = open_window(source, settings, config_path, on_reset)
    if duration_s is not None:
        QtCore.QTimer.singleShot(int(duration_s * MS_PER_S), window.close)
    # Ctrl-C and SIGTERM close the window as its close button does (settings saved, threads
    # stopped). Python runs the handler between two bytecodes of whatever Python code runs (the
    # display timer's, at the latest), so it only queues the close for the event loop.
    def close_soon(*_: object) -> None:
        QtCore.QTimer.singleShot(0, window.close)

    previous = {signum: signal.signal(signum, close_soon) for signum in CLOSING_SIGNALS}
    try:
        return app.exec()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def gui(args: argparse.Namespace) -> int:
    """``livegesture gui [SOURCE]``: settings from the config file, ``--model``, ``--backend`` and ``--remote`` on top."""
    return run_gui(args.source, settings_from_args(args), args.config, args.duration, args.on_reset)
