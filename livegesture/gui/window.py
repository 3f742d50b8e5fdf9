"""The main window: drives a :class:`~livegesture.pipeline.runner.Pipeline` from a timer.

All the work runs on the pipeline's threads; the GUI thread only calls the non-blocking
:meth:`Pipeline.poll` about 30 times a second and draws what it returns. Errors (a bad file,
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

from livegesture.events import LivegestureError
from livegesture.evaluate.metrics import RunningAccuracy, true_label_at
from livegesture.gui.history import DecisionTimeline, timeline_span, truth_runs
from livegesture.gui.images import EventOverlay, frame_rgb
from livegesture.gui.text import accuracy_text, label_for_key, label_keys_help
from livegesture.pipeline.decision import label_name
from livegesture.gui.widgets import ErrorBanner, ImagePanel, PredictionPanel, SettingsPanel, TimelinePlot
from livegesture.integrate import NET_INPUT_SIZE
from livegesture.pipeline.runner import Pipeline, PipelineUpdate, error_message
from livegesture.pipeline.settings import PipelineSettings, save_settings
from livegesture.sources import CAMERA_PREFIX, open_source
from livegesture.sources.base import EventSource
from livegesture.sources.camera import DISCONNECTED, STATUS_CONNECTED, CameraSource
from livegesture.sources.labels import CLASS_NAMES

REFRESH_MS = 33
"""Interval of the display timer (about 30 updates a second)."""
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 0.0)
"""Replay speeds offered; 0 = as fast as possible."""
RECORDING_FILTER = "Event recordings (*.aedat4 *.aedat);;All files (*)"
MODEL_FILTER = "Models (*.npz *.pkl);;All files (*)"
DEFAULT_RECORDINGS_DIR = Path("~/livegesture-recordings")
WINDOW_TITLE = "livegesture"
RECORD_TEXT = "\u25cf Record"
STOP_RECORDING_TEXT = "\u25a0 Stop recording"
RECORDING_COLOUR = "#ff5c5c"


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
        self._settings = settings
        self._overlay: EventOverlay | None = None
        self._timeline = DecisionTimeline()
        self._accuracy = RunningAccuracy([])
        self._now_us = 0
        self._first_us: int | None = None
        """Event time of the first event shown: the timeline's origin."""
        self._last_error: str | None = None
        self._camera_problem: str | None = None
        """The banner's message about an unplugged camera, while it lasts."""
        self._finished = False
        self.last_update: PipelineUpdate | None = None
        """What the latest :meth:`refresh` took from the pipeline."""
        self._build()
        self.settings_panel.show_settings(settings)
        self._update_transport()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.banner = ErrorBanner()
        self.overlay_panel = ImagePanel("events (ON green, OFF red)")
        self.frame_panel = ImagePanel(f"network input {NET_INPUT_SIZE}\u00d7{NET_INPUT_SIZE}")
        self.prediction = PredictionPanel(CLASS_NAMES)
        self.timeline_plot = TimelinePlot()
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
        self.setCentralWidget(central)
        self._build_toolbar()
        self._build_dock()
        self.stats_label = QtWidgets.QLabel()
        self.statusBar().addPermanentWidget(self.stats_label)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("controls")
        bar.setObjectName("controls")
        bar.setMovable(False)
        bar.addAction("Open file\u2026", self.choose_file).setToolTip("replay a recording (.aedat4, .aedat)")
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
        keys = QtWidgets.QLabel(f"Space  pause / play a replay\n\nWhile recording, keys mark gestures:\n"
                                f"{label_keys_help()}\nSpace / Esc  end the gesture")
        keys.setStyleSheet("font-family: monospace")
        panel = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(panel)
        layout.addWidget(self.settings_panel)
        layout.addWidget(self.recording_label)
        layout.addWidget(keys)
        layout.addStretch(1)
        self.dock = QtWidgets.QDockWidget("Settings", self)
        self.dock.setObjectName("settings")
        self.dock.setWidget(panel)
        self.dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                              | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        toggle = self.dock.toggleViewAction()
        toggle.setShortcut(QtGui.QKeySequence("F2"))
        self.findChild(QtWidgets.QToolBar, "controls").addAction(toggle)

    # -- state -----------------------------------------------------------------------------

    @property
    def settings(self) -> PipelineSettings:
        """The settings in force (the pipeline's when one runs)."""
        return self.pipeline.settings if self.pipeline is not None else self._settings

    @property
    def now_us(self) -> int:
        """Event time of the latest event shown."""
        return self._now_us

    def show_error(self, message: str) -> None:
        """Show ``message`` in the banner and the status bar (never modal)."""
        self._last_error = message
        self.banner.show_message(message)
        self.statusBar().showMessage(message)

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
            source = open_source(spec)
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
        self._overlay = EventOverlay(pipeline.source.sensor_size)
        self._timeline.clear()
        self._accuracy = RunningAccuracy(pipeline.source.labels or [])
        self._now_us = 0
        self._first_us = None
        self._finished = False
        self.last_update = None
        self.prediction.set_class_names(pipeline.class_names)
        self.prediction.clear()
        self.banner.hide()
        if pipeline.sensor_warning:
            self.banner.show_message(pipeline.sensor_warning)
        self._last_error = self._camera_problem = None
        width, height = pipeline.source.sensor_size
        self.source_label.setText(f"  {pipeline.source.name}  ({width}\u00d7{height})")
        self.statusBar().showMessage(f"playing {pipeline.source.name}")
        pipeline.start()
        self._update_transport()
        return True

    def _stop_pipeline(self) -> None:
        if self.pipeline is None:
            return
        self.stop_recording()
        self._settings = self.pipeline.settings
        self.pipeline.stop()
        self.pipeline = None

    def change_setting(self, name: str, value: Any) -> None:
        """Apply one setting to the running pipeline (or keep it for the next one); a bad value
        is shown and the controls go back to the settings in force."""
        try:
            if self.pipeline is not None:
                self.pipeline.update_settings(**{name: value})
            else:
                self._settings = self._settings.replace(**{name: value})
        except LivegestureError as err:
            self.show_error(str(err))
        self.settings_panel.show_settings(self.settings)
        self._update_transport()

    # -- transport -------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        """Pause or resume a replay; after its end, play it again from the start."""
        pipeline = self.pipeline
        if pipeline is None or pipeline.replay is None:
            return
        if self._finished:
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
        self.play_action.setText("Play" if paused or self._finished else "Pause")
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
        update = self.last_update = self.pipeline.poll()
        if update.events.size:
            self._overlay.add(update.events)
            self._now_us = int(update.events["t"][-1])
            self._first_us = int(update.events["t"][0]) if self._first_us is None else self._first_us
            self.overlay_panel.show_rgb(self._overlay.rgb())
        if update.frame is not None:
            self.frame_panel.show_rgb(frame_rgb(update.frame.data))
        self._show_decisions(update)
        self.stats_label.setText(update.stats.figures())
        if update.error and update.error != self._last_error:
            self.show_error(update.error)
            self.settings_panel.show_settings(self.settings)  # a rejected backend/model change is reverted
        if isinstance(self.pipeline.source, CameraSource):
            self._show_camera_status(self.pipeline.source)
        if update.finished and not self._finished:
            self._finished = True
            self.statusBar().showMessage(f"end of {self.pipeline.source.name}: press Play to replay it")
            self._update_transport()
        self._show_recording()

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
            self.statusBar().showMessage(f"{camera.name}: connected again")

    def _show_decisions(self, update: PipelineUpdate) -> None:
        for decision in update.decisions:
            self._timeline.add(decision.t_us, decision.label)
        self._accuracy.add([d.t_us for d in update.decisions], [d.label for d in update.decisions])
        decision = update.prediction
        if decision is not None and update.decisions:
            self.prediction.show_decision(decision.label, decision.confidence, decision.scores)
        self.prediction.bars.set_threshold(self.settings.min_confidence)
        labels = self.pipeline.source.labels
        if labels is not None and decision is not None:
            self.prediction.show_truth(true_label_at(labels, self._now_us), decision.label,
                                       accuracy_text(self._accuracy.correct, self._accuracy.total))
        if self._first_us is None:
            return
        start, end = timeline_span(self._first_us, self._now_us, self._timeline.span_us)
        truth = truth_runs(labels, start, self._now_us) if labels is not None else None
        self.timeline_plot.show_runs(self._timeline.runs(self._now_us), truth, self._first_us, start, end)

    # -- recording -------------------------------------------------------------------------

    def toggle_recording(self) -> None:
        if self.pipeline is not None and self.pipeline.recorder is not None:
            self.stop_recording()
            return
        directory = DEFAULT_RECORDINGS_DIR.expanduser()
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
        if recorder is not None:
            self.statusBar().showMessage(f"recorded {recorder.events_written:,} events to {recorder.path}, "
                                         f"{len(recorder.segments)} gestures to {recorder.labels_path}")
        self._show_recording()

    def _show_recording(self) -> None:
        recorder = self.pipeline.recorder if self.pipeline is not None else None
        self.record_action.setChecked(recorder is not None)
        self.record_action.setText(RECORD_TEXT if recorder is None else STOP_RECORDING_TEXT)
        if recorder is None:
            self.recording_label.setText("not recording")
            self.recording_label.setStyleSheet("")
            return
        marking = recorder.running_label
        gesture = ("press a key to mark a gesture" if marking is None
                   else f"marking: {label_name(marking, CLASS_NAMES)}")
        self.recording_label.setText(f"\u25cf recording {recorder.path.name}\n{recorder.events_written:,} events, "
                                     f"{len(recorder.segments)} gestures marked\n{gesture}")
        self.recording_label.setStyleSheet(f"color: {RECORDING_COLOUR}")

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        """While recording: 1-9, 0, - start marking a gesture, Space / Esc end it.
        Otherwise Space pauses or resumes a replay."""
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
            super().keyPressEvent(event)
            return
        self._show_recording()

    # -- closing ---------------------------------------------------------------------------

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Stop the timer, the recording and every pipeline thread; save the settings."""
        self._timer.stop()
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
