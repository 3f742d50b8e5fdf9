"""The window's parts: the two images, the prediction with its confidence bars, the decision
timeline, the settings panel and the error banner. They only draw what they are given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from livegesture.evaluate.metrics import NO_GESTURE
from livegesture.gui.history import Run
from livegesture.gui.text import WAITING_TEXT
from livegesture.pipeline.decision import label_name
from livegesture.pipeline.settings import BACKEND_CHOICES, MODES, SETTING_HELP, PipelineSettings
from livegesture.sources.replay import US_PER_S

CLASS_COLOURS = ("#5fa8ff", "#ffa64d", "#5fd35f", "#ff6b6b", "#b48cff", "#d9a066",
                 "#ff8fd8", "#ffd24d", "#b8e04f", "#4fe0e0", "#9aa0a6")
"""One colour per DVS Gesture class (cycled for a model with more outputs)."""
NO_GESTURE_COLOUR = "#30343c"
DIM_TEXT_COLOUR = "#8a90a0"
PANEL_BACKGROUND = "#0e1016"
FOREGROUND = "#d0d4dc"
PREDICTION_POINT_SIZE = 30
RIGHT_MARK, WRONG_MARK = "  \u2714", "  \u2718"
BAR_HEIGHT = 0.72
PREDICTED_ROW, TRUE_ROW = 1.0, 0.0
ROW_HEIGHT = 0.8
INTEGER_LIMITS: dict[str, tuple[int, int]] = {
    "events_per_frame": (1, 1_000_000),
    "frames_per_window": (1, 1_000),
    "clear_every": (1, 1_000),
    "drain_steps": (0, 100),
}
"""Spin box ranges of the integer settings (the settings validate the rest)."""


def class_colour(label: int) -> str:
    """The colour of class ``label``; ``NO_GESTURE_COLOUR`` for ``NO_GESTURE``."""
    return NO_GESTURE_COLOUR if label == NO_GESTURE else CLASS_COLOURS[label % len(CLASS_COLOURS)]


def _make_static(plot: pg.PlotWidget) -> None:
    """A display, not an explorer: no mouse panning or zooming, no menu, no auto-range button."""
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.setMenuEnabled(False)


class ImagePanel(pg.GraphicsLayoutWidget):
    """A titled RGB image, square pixels, row 0 at the top."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.setBackground(PANEL_BACKGROUND)
        self.title = self.addLabel(title, row=0, col=0, color=FOREGROUND)
        self.view = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.setMinimumSize(260, 260)

    def show_rgb(self, rgb: np.ndarray) -> None:
        """Draw an ``(H, W, 3)`` uint8 image, each pixel a square block (no smoothing)."""
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))


class ConfidenceBars(pg.PlotWidget):
    """One horizontal bar per class: its smoothed score; the threshold a class needs as a line."""

    def __init__(self, class_names: Sequence[str]) -> None:
        super().__init__(background=PANEL_BACKGROUND)
        _make_static(self)
        self.getViewBox().invertY(True)
        self.setXRange(0, 1, padding=0.02)
        self.getAxis("bottom").setLabel("confidence")
        self.bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[], brushes=[])
        self.addItem(self.bars)
        self.threshold = pg.InfiniteLine(angle=90, pen=pg.mkPen(DIM_TEXT_COLOUR, style=QtCore.Qt.PenStyle.DashLine))
        self.addItem(self.threshold)
        self.scores = np.zeros(0)
        self.set_class_names(class_names)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        self.class_names = tuple(class_names)
        self.getAxis("left").setTicks([list(enumerate(self.class_names))])
        self.setYRange(-0.5, len(self.class_names) - 0.5, padding=0)
        self.set_scores(np.zeros(len(self.class_names)), None)

    def set_scores(self, scores: np.ndarray, label: int | None) -> None:
        """Bars for ``scores``: the shown class in its colour, the others dimmed."""
        self.scores = np.asarray(scores, dtype=float)
        brushes = [pg.mkBrush(class_colour(k)) if k == label else pg.mkBrush(pg.mkColor(class_colour(k)).darker(220))
                   for k in range(len(self.scores))]
        self.bars.setOpts(x0=np.zeros(len(self.scores)), y=np.arange(len(self.scores)), width=self.scores,
                          height=BAR_HEIGHT, brushes=brushes, pen=None)

    def set_threshold(self, min_confidence: float) -> None:
        self.threshold.setValue(min_confidence)


class PredictionPanel(QtWidgets.QWidget):
    """The running prediction in large type, its confidence, the true label and the running
    accuracy of a labelled recording, and the per-class confidence bars."""

    def __init__(self, class_names: Sequence[str]) -> None:
        super().__init__()
        self.class_names = tuple(class_names)
        self.name = QtWidgets.QLabel(WAITING_TEXT)
        font = self.name.font()
        font.setPointSize(PREDICTION_POINT_SIZE)
        font.setBold(True)
        self.name.setFont(font)
        self.name.setMinimumWidth(420)
        self.confidence = QtWidgets.QLabel("")
        self.truth = QtWidgets.QLabel("")
        self.accuracy = QtWidgets.QLabel("")
        for label in (self.confidence, self.truth, self.accuracy):
            bigger = label.font()
            bigger.setPointSize(bigger.pointSize() + 3)
            label.setFont(bigger)
        self.bars = ConfidenceBars(class_names)
        layout = QtWidgets.QVBoxLayout(self)
        for widget in (self.name, self.confidence, self.truth, self.accuracy):
            layout.addWidget(widget)
        layout.addWidget(self.bars, stretch=1)
        self._set_name(WAITING_TEXT, DIM_TEXT_COLOUR)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        self.class_names = tuple(class_names)
        self.bars.set_class_names(class_names)

    def clear(self) -> None:
        self._set_name(WAITING_TEXT, DIM_TEXT_COLOUR)
        self.confidence.setText("")
        self.truth.setText("")
        self.accuracy.setText("")
        self.bars.set_scores(np.zeros(len(self.class_names)), None)

    def show_decision(self, label: int | None, confidence: float, scores: np.ndarray) -> None:
        colour = DIM_TEXT_COLOUR if label is None else class_colour(label)
        self._set_name(label_name(label, self.class_names), colour)
        self.confidence.setText(f"confidence {100 * confidence:.0f}%")
        self.bars.set_scores(scores, label)

    def show_truth(self, true_label: int, predicted: int | None, accuracy: str) -> None:
        """The labelled gesture now (``NO_GESTURE`` between gestures) and the running accuracy."""
        if true_label == NO_GESTURE:
            name, colour, mark = label_name(None, self.class_names), DIM_TEXT_COLOUR, ""
        else:
            name, colour = label_name(true_label, self.class_names), class_colour(true_label)
            mark = RIGHT_MARK if predicted == true_label else WRONG_MARK
        self.truth.setText(f"true: <b style='color:{colour}'>{name}</b>{mark}")
        self.accuracy.setText(accuracy)

    def _set_name(self, text: str, colour: str) -> None:
        self.name.setText(text)
        self.name.setStyleSheet(f"color: {colour}")


class TimelinePlot(pg.PlotWidget):
    """Recent decisions as coloured stretches over event time; the labels in a row beneath."""

    def __init__(self) -> None:
        super().__init__(background=PANEL_BACKGROUND)
        _make_static(self)
        self.getAxis("bottom").setLabel("time since the first event (s)")
        self.getAxis("left").setTicks([[(PREDICTED_ROW, "predicted"), (TRUE_ROW, "true")]])
        self.setYRange(TRUE_ROW - 0.5, PREDICTED_ROW + 0.5, padding=0)
        self.setFixedHeight(130)
        self.rows = {row: pg.BarGraphItem(x0=[], width=[], y=[], height=ROW_HEIGHT, brushes=[])
                     for row in (PREDICTED_ROW, TRUE_ROW)}
        for item in self.rows.values():
            self.addItem(item)

    def show_runs(self, predicted: list[Run], truth: list[Run] | None, origin_us: int, start_us: int,
                  end_us: int) -> None:
        """Draw the runs over ``[start_us, end_us)``, in seconds since ``origin_us`` (``truth``
        None: an unlabelled source, that row stays empty)."""
        for row, runs in ((PREDICTED_ROW, predicted), (TRUE_ROW, truth or [])):
            self.rows[row].setOpts(
                x0=(np.array([run.start_us for run in runs]) - origin_us) / US_PER_S,
                width=np.array([run.end_us - run.start_us for run in runs]) / US_PER_S,
                y=np.full(len(runs), row), height=ROW_HEIGHT, pen=None,
                brushes=[pg.mkBrush(class_colour(run.label)) for run in runs])
        self.setXRange((start_us - origin_us) / US_PER_S, (end_us - origin_us) / US_PER_S, padding=0)


class SettingsPanel(QtWidgets.QWidget):
    """The pipeline's settings as controls. ``changed(name, value)`` is emitted when the user
    changes one; :meth:`show_settings` sets them all without emitting."""

    changed = QtCore.Signal(str, object)
    choose_model = QtCore.Signal()

    def __init__(self) -> None:
        super().__init__()
        form = QtWidgets.QFormLayout(self)
        self.backend = QtWidgets.QComboBox()
        self.backend.addItems(BACKEND_CHOICES)
        self.backend.setToolTip(SETTING_HELP["backend"])
        self.backend.currentTextChanged.connect(lambda text: self.changed.emit("backend", text))
        form.addRow("backend", self.backend)
        self.remote = QtWidgets.QLineEdit()
        self.remote.setPlaceholderText("HOST:PORT of a livegesture serve (empty: here)")
        self.remote.setToolTip(SETTING_HELP["remote"])
        self.remote.editingFinished.connect(lambda: self.changed.emit("remote", self.remote.text().strip()))
        form.addRow("remote", self.remote)
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip(SETTING_HELP["mode"])
        self.mode.currentTextChanged.connect(lambda text: self.changed.emit("mode", text))
        form.addRow("mode", self.mode)
        self.model = QtWidgets.QPushButton()
        self.model.clicked.connect(self.choose_model.emit)
        form.addRow("model", self.model)
        self.spins: dict[str, QtWidgets.QSpinBox] = {}
        for name, (low, high) in INTEGER_LIMITS.items():
            spin = QtWidgets.QSpinBox()
            spin.setRange(low, high)
            spin.setKeyboardTracking(False)  # typing 2500 changes the setting once, at the end
            spin.setToolTip(SETTING_HELP[name])
            spin.setAccelerated(True)
            spin.valueChanged.connect(lambda value, name=name: self.changed.emit(name, value))
            self.spins[name] = spin
            form.addRow(name.replace("_", " "), spin)
        self.spins["events_per_frame"].setSingleStep(100)
        self.noise_filter = QtWidgets.QCheckBox("background-activity filter")
        self.noise_filter.toggled.connect(lambda on: self.changed.emit("noise_filter", on))
        form.addRow("noise filter", self.noise_filter)
        self.lossless = QtWidgets.QCheckBox("replays never drop (may lag)")
        self.lossless.toggled.connect(lambda on: self.changed.emit("lossless", on))
        form.addRow("lossless", self.lossless)

    def show_settings(self, settings: PipelineSettings) -> None:
        widgets = (self.backend, self.remote, self.mode, self.noise_filter, self.lossless, *self.spins.values())
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.backend.setCurrentText(settings.backend)
            self.remote.setText(settings.remote)
            self.mode.setCurrentText(settings.mode)
            self.noise_filter.setChecked(settings.noise_filter)
            self.lossless.setChecked(settings.lossless)
            for name, spin in self.spins.items():
                spin.setValue(getattr(settings, name))
            self.model.setText(QtCore.QFileInfo(settings.model).fileName())
            self.model.setToolTip(f"{settings.model}\nclick to choose another model file")
        finally:
            for widget in widgets:
                widget.blockSignals(False)


class ErrorBanner(QtWidgets.QFrame):
    """A red strip above the display with the latest error; hidden until there is one,
    dismissed with its close button. Never modal."""

    def __init__(self) -> None:
        super().__init__()
        self.setStyleSheet("ErrorBanner { background: #7a1d1d; border-radius: 4px; } "
                           "QLabel { color: white; font-weight: bold; }")
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QToolButton()
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addWidget(self.message, stretch=1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.show()


def dark_palette() -> QtGui.QPalette:
    """A dark palette for the Fusion style, matching the plots' background."""
    palette = QtGui.QPalette()
    colours = {
        QtGui.QPalette.ColorRole.Window: "#1a1d24", QtGui.QPalette.ColorRole.WindowText: FOREGROUND,
        QtGui.QPalette.ColorRole.Base: "#12141a", QtGui.QPalette.ColorRole.AlternateBase: "#1f232b",
        QtGui.QPalette.ColorRole.Text: FOREGROUND, QtGui.QPalette.ColorRole.Button: "#262a33",
        QtGui.QPalette.ColorRole.ButtonText: FOREGROUND, QtGui.QPalette.ColorRole.Highlight: "#3d6fb6",
        QtGui.QPalette.ColorRole.HighlightedText: "#ffffff", QtGui.QPalette.ColorRole.ToolTipBase: "#262a33",
        QtGui.QPalette.ColorRole.ToolTipText: FOREGROUND, QtGui.QPalette.ColorRole.PlaceholderText: DIM_TEXT_COLOUR,
    }
    for role, colour in colours.items():
        palette.setColor(role, QtGui.QColor(colour))
    palette.setColor(QtGui.QPalette.ColorGroup.Disabled, QtGui.QPalette.ColorRole.ButtonText, QtGui.QColor("#5a606c"))
    palette.setColor(QtGui.QPalette.ColorGroup.Disabled, QtGui.QPalette.ColorRole.WindowText, QtGui.QColor("#5a606c"))
    return palette
