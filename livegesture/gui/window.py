"""The main window: drives a :class:`~livegesture.pipeline.runner.Pipeline` from a timer.

All the work runs on the pipeline's threads; the GUI thread only calls the non-blocking
:meth:`Pipeline.poll` about 30 times a second, hands the update to a Qt-free
:class:`~livegesture.display.state.DisplayState` and draws that; the controls show the
settings the update says are in force. Once the pipeline has stopped (a replay's end, a
failure) the timer stops too, until another source is opened. Errors (a bad file,
a lost camera, a failing backend, a bad setting) appear in the banner above the display and
in the status bar. Closing the window stops the recording and every pipeline thread, then
saves the settings.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from livegesture.display.state import DisplayState
from livegesture.display.text import NO_SOURCE_HINT, count_text, label_for_key, label_keys_help
from livegesture.events import LivegestureError, error_message
from livegesture.geometry import FieldMapping
from livegesture.gui.images import EventOverlay, frame_rgb
from livegesture.gui.widgets import (
    ErrorBanner,
    ImagePanel,
    PredictionPanel,
    SettingsPanel,
    TimelinePlot,
    legend_html,
)
from livegesture.integrate import NET_INPUT_SIZE
from livegesture.pipeline.runner import Pipeline, PipelineUpdate
from livegesture.pipeline.settings import PipelineSettings, save_settings
from livegesture.sources import CAMERA_PREFIX, open_source
from livegesture.sources.base import EventSource
from livegesture.sources.camera import DISCONNECTED, STATUS_CONNECTED, CameraSource
from livegesture.sources.labels import CLASS_NAMES, label_name
from livegesture.sources.resets import OnReset

REFRESH_MS = 33
"""Interval of the display timer (about 30 updates a second)."""
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 0.0)
"""Replay speeds offered; 0 = as fast as possible."""
RECORDING_FILTER = "Event recordings (*.aedat4 *.aedat *.dat);;All files (*)"
MODEL_FILTER = "Models (*.npz *.pkl);;All files (*)"
DEFAULT_RECORDINGS_DIR = Path("~/livegesture-recordings")
WINDOW_TITLE = "livegesture"
RECORD_TEXT = "\u25cf Record"
STOP_RECORDING_TEXT = "\u25a0 Stop recording"
RECORDING_COLOUR = "#ff5c5c"
MESSAGE_MS = 15_000
"""How long a message (an error, a recording's result, a reconnected camera) stays in the
status bar before the pipeline's state shows again (the banner keeps an error)."""


def speed_text(speed: float) -> str:
    return "max" if speed == 0 else f"{speed:g}\u00d7"


class MainWindow(QtWidgets.QMainWindow):
    """The live display and its controls. ``settings`` are those at start; ``config_path``
    is where they are saved on close (None: the default config file)."""

    def __init__(self, settings: PipelineSettings, config_path: str | Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle(WINDOW_TITLE)
        self.config_path = config_path
        self.pipeline: Pipeline | None = None
        self.source_spec: str | None = None
        self.on_reset: OnReset = "error"
        """What a recording's timestamp resets do (see :mod:`livegesture.sources.resets`)."""
        self._settings = settings
        """The settings in force (the latest update's while a pipeline runs), or asked for while a
        backend or model loads; kept for the next source and saved on close."""
        self._overlay: EventOverlay | None = None
        self.display: DisplayState | None = None
        """What the window shows of the running pipeline (None before a source is opened)."""
        self._last_error: str | None = None
        self._camera_problem: str | None = None
        """The banner's message about an unplugged camera, while it lasts."""
        self._build()
        self.settings_panel.show_settings(settings)
        self._update_transport()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.banner = ErrorBanner()
        self.overlay_panel = ImagePanel("events (ON green, OFF red); the square: what the network sees")
        self.overlay_panel.roi_moved.connect(lambda x, y, side: self.change_setting("roi", (x, y, side)))
        self.frame_panel = ImagePanel(f"network input {NET_INPUT_SIZE}\u00d7{NET_INPUT_SIZE}")
        self.prediction = PredictionPanel(CLASS_NAMES)
        self.timeline_plot = TimelinePlot()
        self.legend = QtWidgets.QLabel(legend_html(CLASS_NAMES))
        self.legend.setWordWrap(True)
        images = QtWidgets.QHBoxLayout()
        images.addWidget(self.overlay_panel, stretch=1)
        images.addWidget(self.frame_panel, stretch=1)
        images.addWidget(self.prediction, stretch=1)
        central = QtWidgets.QWidget()
        central.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)  # keys reach keyPressEvent
        layout = QtWidgets.QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addLayout(images, stretch=1)
        layout.addWidget(self.timeline_plot)
        layout.addWidget(self.legend)
        self.setCentralWidget(central)
        self._build_toolbar()
        self._build_dock()
        self.state_label = QtWidgets.QLabel(NO_SOURCE_HINT)
        self.statusBar().addWidget(self.state_label, stretch=1)
        self.stats_label = QtWidgets.QLabel()
        self.statusBar().addPermanentWidget(self.stats_label)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("controls")
        bar.setObjectName("controls")
        bar.setMovable(False)
        bar.addAction("Open file\u2026", self.choose_file).setToolTip(
            "replay a recording (.aedat4; .aedat AEDAT 2.0 (jAER) or 3.1 (DVS Gesture))")
        bar.addAction("Camera", lambda: self.open_source(CAMERA_PREFIX)).setToolTip("the first iniVation camera found")
        bar.addSeparator()
        self.play_action = bar.addAction("Pause", self.toggle_pause)
        self.step_action = bar.addAction("Step", self.step)
        self.step_action.setToolTip("while paused: the events of one more frame")
        bar.addWidget(QtWidgets.QLabel(" speed "))
        self.speed = QtWidgets.QComboBox()
        for speed in SPEEDS:
            self.speed.addItem(speed_text(speed), speed)
        self.speed.activated.connect(lambda index: self.change_setting("speed", self.speed.itemData(index)))
        bar.addWidget(self.speed)
        bar.addSeparator()
        self.record_action = bar.addAction(RECORD_TEXT, self.toggle_recording)
        self.record_action.setCheckable(True)
        self.record_action.setToolTip("write what the source produces to aedat4; keys 1-9, 0, - mark gestures")
        bar.addSeparator()
        self.source_label = QtWidgets.QLabel()
        bar.addWidget(self.source_label)

    def _build_dock(self) -> None:
        self.settings_panel = SettingsPanel()
        self.settings_panel.changed.connect(self.change_setting)
        self.settings_panel.choose_model.connect(self.choose_model)
        self.recording_label = QtWidgets.QLabel("not recording")
        self.recording_label.setWordWrap(True)
        self.recording_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        for control in (*self.settings_panel.controls.values(), self.speed):
            control.installEventFilter(self)  # Space and the label keys are the window's, not a control's
        keys = QtWidgets.QLabel(f"Space  pause / play a replay\n\nWhile recording, keys mark gestures:\n"
                                f"{label_keys_help()}\nSpace / Esc  end the gesture")
        keys.setStyleSheet("font-family: monospace")
        panel = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(panel)
        layout.addWidget(self.settings_panel)
        layout.addWidget(self.recording_label)
        layout.addWidget(keys)
        layout.addStretch(1)
        scroll = QtWidgets.QScrollArea()  # a screen too short for the panel scrolls it
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(panel.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        self.dock = QtWidgets.QDockWidget("Settings", self)
        self.dock.setObjectName("settings")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                              | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        toggle = self.dock.toggleViewAction()
        toggle.setShortcut(QtGui.QKeySequence("F2"))
        self.findChild(QtWidgets.QToolBar, "controls").addAction(toggle)

    # -- state -----------------------------------------------------------------------------

    @property
    def settings(self) -> PipelineSettings:
        """The settings in force (as the latest update of a running pipeline says), or asked for
        while a backend or model loads."""
        return self._settings

    @property
    def last_update(self) -> PipelineUpdate | None:
        """What the latest :meth:`refresh` took from the pipeline."""
        return self.display.update if self.display is not None else None

    @property
    def now_us(self) -> int:
        """Event time of the latest event shown."""
        return self.display.now_us if self.display is not None else 0

    @property
    def redrawing(self) -> bool:
        """The display timer runs: a pipeline is running (or recording)."""
        return self._timer.isActive()

    def _running(self) -> Pipeline | None:
        """The pipeline, while it runs (not finished, failed or stopped)."""
        update = self.last_update
        return self.pipeline if self.pipeline is not None and (update is None or update.running) else None

    def show_error(self, message: str) -> None:
        """Show ``message`` in the banner and the status bar (never modal)."""
        self._last_error = message
        self.banner.show_message(message)
        self.statusBar().showMessage(message, MESSAGE_MS)

    # -- source and pipeline -----------------------------------------------------------------

    def choose_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a recording", self._dialog_dir(), RECORDING_FILTER)
        if path:
            self.open_source(path)

    def choose_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Choose a model", str(Path(self.settings.model).parent),
                                                        MODEL_FILTER)
        if path:
            self.change_setting("model", path)

    def open_source(self, spec: str) -> bool:
        """Run the pipeline on ``spec`` (a recording path or ``camera``), replacing the running
        one; on failure the message is shown and the running pipeline (if any) goes on."""
        try:
            source = open_source(spec, self.on_reset)
        except Exception as err:  # a bad file, no camera: say so in the window
            self.show_error(error_message("source", err))
            return False
        return self.run_source(source, spec)

    def run_source(self, source: EventSource, spec: str) -> bool:
        """Run the pipeline on an opened ``source`` (``spec`` opens it again for a replay)."""
        try:
            pipeline = Pipeline(source, None, self.settings)
        except Exception as err:  # a bad model file (the pipeline has closed the source)
            self.show_error(error_message("model", err))
            return False
        self._stop_pipeline()
        self.pipeline, self.source_spec = pipeline, spec
        source = pipeline.source
        self._overlay = EventOverlay(source.sensor_size)
        self.display = DisplayState(source.name, source.labels, source.live)
        self.prediction.set_class_names(pipeline.class_names)
        self.prediction.clear()
        self.banner.hide()
        self._last_error = self._camera_problem = None
        width, height = source.sensor_size
        self.source_label.setText(f"  {source.name}  ({width}\u00d7{height})")
        self.state_label.setText(self.display.status())
        self._show_geometry()
        pipeline.start()
        self._timer.start()
        self._update_transport()
        return True

    def _stop_pipeline(self) -> None:
        if self.pipeline is None:
            return
        self.stop_recording()
        self.pipeline.stop()
        self.pipeline = None

    def change_setting(self, name: str, value: Any) -> None:
        """Apply one setting to the running pipeline (and keep it for the next one); a bad
        value is shown and the controls go back to the settings in force. A backend or model
        is in force once the pipeline has loaded it: the controls follow its updates."""
        try:
            self._settings = self._settings.replace(**{name: value})
            if self._running() is not None:
                self.pipeline.update_settings(**{name: value})
        except LivegestureError as err:
            self.show_error(str(err))
        self.settings_panel.show_settings(self.settings)
        self._show_geometry()
        self._update_transport()

    def _show_geometry(self) -> None:
        """Draw the region of interest on the events of a sensor other than a whole DVS128, and
        say what the network sees."""
        if self.pipeline is None:
            return
        sensor_size = self.pipeline.source.sensor_size
        mapping = FieldMapping(sensor_size, self.settings.roi)
        roi = mapping.roi
        self.overlay_panel.show_roi(roi.x, roi.y, roi.side, None if mapping.identity else sensor_size)
        source = "" if mapping.identity else f" from {roi.side}\u00d7{roi.side} at ({roi.x}, {roi.y})"
        self.frame_panel.title.setText(f"network input {NET_INPUT_SIZE}\u00d7{NET_INPUT_SIZE}{source}")
        self.frame_panel.setToolTip(f"the network sees {mapping.describe()}")

    # -- transport -------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        """Pause or resume a replay; after its end, play it again from the start."""
        pipeline = self.pipeline
        if pipeline is None or pipeline.replay is None:
            return
        if self.display.finished:
            self.open_source(self.source_spec)
        elif pipeline.paused:
            pipeline.resume()
        else:
            pipeline.pause()
        self._update_transport()

    def step(self) -> None:
        """While paused: the events of one more frame."""
        if self.pipeline is not None and self.pipeline.paused:
            self.pipeline.step()

    def _update_transport(self) -> None:
        replay = self.pipeline is not None and self.pipeline.replay is not None
        paused = replay and self.pipeline.paused
        self.play_action.setEnabled(replay)
        finished = self.display is not None and self.display.finished
        self.play_action.setText("Play" if paused or finished else "Pause")
        self.step_action.setEnabled(bool(paused))
        self.speed.setEnabled(replay)
        index = self.speed.findData(self.settings.speed)
        if index < 0:
            self.speed.addItem(speed_text(self.settings.speed), self.settings.speed)
            index = self.speed.count() - 1
        self.speed.setCurrentIndex(index)
        self.record_action.setEnabled(self.pipeline is not None)

    # -- the display -----------------------------------------------------------------------

    def refresh(self) -> None:
        """One timer tick: take what the pipeline produced and draw it."""
        if self.pipeline is None:
            return
        update = self.pipeline.poll()
        display = self.display
        display.apply(update)
        if update.events.size:
            self._overlay.add(update.events)
            self.overlay_panel.show_rgb(self._overlay.rgb())
        if update.frame is not None:
            self.frame_panel.show_rgb(frame_rgb(update.frame.data))
        if update.class_names != self.prediction.class_names:  # another model is in force
            self.prediction.set_class_names(update.class_names)
            self.legend.setText(legend_html(update.class_names))
        self._show_decisions(display)
        self.stats_label.setText(update.stats.figures())
        if display.message is not None:
            self.show_error(display.message)
        if update.running and update.switching is None and update.settings != self._settings:  # loaded, or refused
            self._settings = update.settings
            self.settings_panel.show_settings(update.settings)
            self._show_geometry()
        self.settings_panel.set_switching(update.switching is not None)
        if isinstance(self.pipeline.source, CameraSource):
            self._show_camera_status(self.pipeline.source)
        status = display.status()
        if status != self.state_label.text():
            self.state_label.setText(status)
            self._update_transport()
        self._show_recording()
        if not update.running and self.pipeline.recorder is None:
            self._timer.stop()  # nothing more will come: no redraws until another source is opened

    def _show_camera_status(self, camera: CameraSource) -> None:
        """A camera that was unplugged says so in the banner until it is back."""
        status = camera.status
        if status.startswith(DISCONNECTED):
            message = f"{camera.name}: {status}; trying to reconnect"
            if message != self._camera_problem:
                self._camera_problem = message
                self.show_error(message)
        elif status == STATUS_CONNECTED and self._camera_problem is not None:
            if self._last_error == self._camera_problem:
                self.banner.hide()
            self._camera_problem = None
            self.statusBar().showMessage(f"{camera.name}: connected again", MESSAGE_MS)

    def _show_decisions(self, display: DisplayState) -> None:
        decision = display.prediction
        if decision is not None and display.new_decision:
            self.prediction.show_decision(decision)
        self.prediction.bars.set_threshold(self.settings.min_confidence)
        if display.labels is not None and decision is not None:
            self.prediction.show_truth(display.true_label, decision.label, display.accuracy_line())
        view = display.timeline_view()
        if view is not None:
            self.timeline_plot.show(view)

    # -- recording -------------------------------------------------------------------------

    def toggle_recording(self) -> None:
        if self.pipeline is not None and self.pipeline.recorder is not None:
            self.stop_recording()
            return
        directory = DEFAULT_RECORDINGS_DIR.expanduser()
        try:  # the dialog opens where it is told only if the folder exists (else in the last folder used)
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self.show_error(f"{directory}: cannot create the recordings folder ({err.strerror or err})")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Record to", str(directory / f"gestures-{stamp}.aedat4"),
                                                        "aedat4 recordings (*.aedat4)")
        if path:
            self.start_recording(path)
        self._show_recording()

    def start_recording(self, path: str | Path) -> bool:
        """Write what the source produces to ``path`` (aedat4); marked gestures go to its
        ``_labels.csv`` when the recording stops."""
        if self.pipeline is None:
            return False
        path = Path(path).with_suffix(".aedat4")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.pipeline.start_recording(path)
        except (OSError, LivegestureError) as err:
            self.show_error(f"{path}: cannot record ({err})" if isinstance(err, OSError) else str(err))
            return False
        self.centralWidget().setFocus()  # the label keys must not go to a spin box
        self._show_recording()
        return True

    def stop_recording(self) -> None:
        """Finalise the recording and write its labels; the paths go to the status bar."""
        if self.pipeline is None:
            return
        try:
            recorder = self.pipeline.stop_recording()
        except LivegestureError as err:
            self.show_error(str(err))
            return
        self._show_recording()
        if recorder is not None:
            events = count_text(recorder.events_written, "event")
            gestures = count_text(len(recorder.segments), "gesture")
            self.statusBar().showMessage(f"recorded {events} to {recorder.path.name}, {gestures} to "
                                         f"{recorder.labels_path.name}", MESSAGE_MS)
            self.recording_label.setText(f"recorded {events} to {recorder.path}\nand {gestures} to "
                                         f"{recorder.labels_path}")

    def _show_recording(self) -> None:
        recorder = self.pipeline.recorder if self.pipeline is not None else None
        self.record_action.setChecked(recorder is not None)
        self.record_action.setText(RECORD_TEXT if recorder is None else STOP_RECORDING_TEXT)
        if recorder is None:
            if self.recording_label.styleSheet():  # a recording has just ended: its result stays shown
                self.recording_label.setText("not recording")
                self.recording_label.setStyleSheet("")
            return
        marking = recorder.running_label
        gesture = ("press a key to mark a gesture" if marking is None
                   else f"marking: {label_name(marking, CLASS_NAMES)}")
        self.recording_label.setText(f"\u25cf recording {recorder.path.name}\n"
                                     f"{count_text(recorder.events_written, 'event')}, "
                                     f"{count_text(len(recorder.segments), 'gesture')} marked\n{gesture}")
        self.recording_label.setStyleSheet(f"color: {RECORDING_COLOUR}")

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        if not self._handle_key(event):
            super().keyPressEvent(event)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        """A spin box with the focus does not take the window's keys (Space would blank it)."""
        if event.type() == QtCore.QEvent.Type.KeyPress and self._handle_key(event):
            return True
        return super().eventFilter(watched, event)

    def _handle_key(self, event: QtGui.QKeyEvent) -> bool:
        """While recording: 1-9, 0, - start marking a gesture, Space / Esc end it.
        Otherwise Space pauses or resumes a replay. False for any other key."""
        recorder = self.pipeline.recorder if self.pipeline is not None else None
        key = event.key()
        ends = key in (QtCore.Qt.Key.Key_Space, QtCore.Qt.Key.Key_Escape)
        label = label_for_key(event.text())
        if recorder is not None and label is not None:
            recorder.begin(label)
        elif recorder is not None and ends:
            recorder.end()
        elif key == QtCore.Qt.Key.Key_Space:
            self.toggle_pause()
        else:
            return False
        self._show_recording()
        return True

    # -- closing ---------------------------------------------------------------------------

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Stop the timer, the recording and every pipeline thread; save the settings."""
        self._timer.stop()
        if self.pipeline is not None:
            self.refresh()  # the settings in force at the very end
        self._stop_pipeline()
        try:
            save_settings(self._settings, self.config_path)
        except LivegestureError as err:
            print(f"livegesture: {err}", file=sys.stderr)  # the window is gone: the terminal is all that is left
        super().closeEvent(event)

    def _dialog_dir(self) -> str:
        if self.source_spec and not self.source_spec.startswith(CAMERA_PREFIX):
            return str(Path(self.source_spec).parent)
        return str(Path.cwd())
