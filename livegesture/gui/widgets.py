"""The window's parts: the two images, the prediction with its confidence bars, the decision
timeline, the settings panel and the error banner. They only draw what they are given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from livegesture.display.state import TimelineView
from livegesture.display.text import CONFIDENCE_HELP, NO_SOURCE_HINT, NO_SOURCE_TEXT, WAITING_TEXT, confidence_text
from livegesture.pipeline.decision import Decision
from livegesture.pipeline.options import FILE_SETTINGS, METAVARS, option_help
from livegesture.pipeline.settings import SETTING_SPECS, PipelineSettings, SettingSpec
from livegesture.sources.labels import NO_GESTURE_NAME, label_name
from livegesture.sources.replay import US_PER_S

CLASS_COLOURS = ("#5fa8ff", "#ffa64d", "#5fd35f", "#ff6b6b", "#b48cff", "#d9a066",
                 "#ff8fd8", "#ffd24d", "#b8e04f", "#4fe0e0", "#9aa0a6")
"""One colour per DVS Gesture class (cycled for a model with more outputs)."""
NO_GESTURE_COLOUR = "#30343c"
DIM_TEXT_COLOUR = "#8a90a0"
ROI_COLOUR = "#f0c040"
"""The square of the sensor the network sees, drawn on the events."""
PANEL_BACKGROUND = "#0e1016"
FOREGROUND = "#d0d4dc"
PREDICTION_POINT_SIZE = 30
NAME_PADDING = 12
"""Pixels beside the longest name in the prediction panel."""
IMAGE_MIN_SIDE = 200
"""The images' smallest side, pixels: with the prediction's names on at most two lines, the
window fits a 1280 x 720 screen (a 1920 x 1080 laptop at 150 %)."""
RIGHT_MARK, WRONG_MARK = "  \u2714", "  \u2718"
BAR_HEIGHT = 0.72
PREDICTED_ROW, TRUE_ROW = 1.0, 0.0
ROW_HEIGHT = 0.8
TOOLBAR_SETTINGS = ("speed",)
"""Settings the toolbar holds rather than the settings panel."""
VIEW_SETTINGS = ("roi",)
"""Settings the event view holds rather than the settings panel: the region of interest is
drawn on it and dragged (:class:`ImagePanel`)."""
SPIN_STEPS = {"events_per_frame": 100, "min_confidence": 0.05, "switch_margin": 0.05}
"""Arrow-key steps of the spin boxes (default 1)."""
FLOAT_DECIMALS = 2


def class_colour(label: int | None) -> str:
    """The colour of class ``label``; ``NO_GESTURE_COLOUR`` for None (no gesture)."""
    return NO_GESTURE_COLOUR if label is None else CLASS_COLOURS[label % len(CLASS_COLOURS)]


def legend_html(class_names: Sequence[str]) -> str:
    """The timeline's colour key: a coloured square and the name of every class, and of no gesture."""
    entries = [(class_colour(k), name) for k, name in enumerate(class_names)] + [(NO_GESTURE_COLOUR, NO_GESTURE_NAME)]
    return " &nbsp; ".join(f"<span style='color:{colour}'>\u25a0</span>&nbsp;{name.replace(' ', '&nbsp;')}"
                           for colour, name in entries)  # lines break between entries only


def _make_static(plot: pg.PlotWidget) -> None:
    """A display, not an explorer: no mouse panning or zooming, no menu, no auto-range button."""
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.setMenuEnabled(False)


class ImagePanel(pg.GraphicsLayoutWidget):
    """A titled RGB image, square pixels, row 0 at the top; optionally a square region of
    interest drawn on it, which the mouse drags (``roi_moved`` gives its new x, y, side)."""

    roi_moved = QtCore.Signal(int, int, int)

    def __init__(self, title: str) -> None:
        super().__init__()
        self.setBackground(PANEL_BACKGROUND)
        self.title = self.addLabel(title, row=0, col=0, color=FOREGROUND)
        self.view = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.roi = pg.ROI((0, 0), (1, 1), pen=pg.mkPen(ROI_COLOUR, width=2), movable=True, rotatable=False,
                          resizable=False, removable=False, translateSnap=True)
        self.roi.setZValue(1)
        self.roi.hide()
        self.roi.sigRegionChangeFinished.connect(self._roi_changed)
        self.view.addItem(self.roi)
        self.setMinimumSize(IMAGE_MIN_SIDE, IMAGE_MIN_SIDE)

    def show_roi(self, x: int, y: int, side: int, bounds: tuple[int, int] | None) -> None:
        """Draw the square ``side`` at ``(x, y)``, draggable within ``bounds`` (width, height);
        ``bounds=None`` hides it."""
        self.roi.blockSignals(True)
        try:
            self.roi.setVisible(bounds is not None)
            if bounds is not None:
                self.roi.maxBounds = QtCore.QRectF(0, 0, *bounds)
                self.roi.setPos((x, y))
                self.roi.setSize((side, side))
        finally:
            self.roi.blockSignals(False)

    def _roi_changed(self) -> None:
        x, y = (int(round(v)) for v in self.roi.pos())
        self.roi_moved.emit(x, y, int(round(self.roi.size()[0])))

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
        self.getAxis("bottom").setLabel("confidence: share of the output spikes")
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
        self.name = QtWidgets.QLabel()
        font = self.name.font()
        font.setPointSize(PREDICTION_POINT_SIZE)
        font.setBold(True)
        self.name.setFont(font)
        self.name.setWordWrap(True)  # a long name on two lines: the window fits a laptop's screen
        self.name.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.confidence = QtWidgets.QLabel("")
        self.confidence.setToolTip(CONFIDENCE_HELP)
        self.truth = QtWidgets.QLabel("")
        self.accuracy = QtWidgets.QLabel("")
        for label in (self.confidence, self.truth, self.accuracy):
            bigger = label.font()
            bigger.setPointSize(bigger.pointSize() + 3)
            label.setFont(bigger)
            label.setWordWrap(True)  # a longer line wraps instead of widening the panel (and moving the images)
        self.bars = ConfidenceBars(class_names)
        layout = QtWidgets.QVBoxLayout(self)
        for widget in (self.name, self.confidence, self.truth, self.accuracy):
            layout.addWidget(widget)
        layout.addWidget(self.bars, stretch=1)
        self.set_class_names(class_names)
        self._set_name(NO_SOURCE_TEXT, DIM_TEXT_COLOUR)
        self.confidence.setText(NO_SOURCE_HINT)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Take the model's class names; the panel is made wide enough for each (and for the
        waiting texts) on at most two lines, and the name as tall as two lines where one needs
        them, so that no name is cut and the panel never changes size."""
        self.class_names = tuple(class_names)
        self.bars.set_class_names(class_names)
        metrics = QtGui.QFontMetrics(self.name.font())
        texts = (*self.class_names, NO_GESTURE_NAME, WAITING_TEXT, NO_SOURCE_TEXT)
        width = max(two_line_width(metrics, text) for text in texts)
        room = QtCore.QRect(0, 0, width, 1 << 16)
        height = max(metrics.boundingRect(room, QtCore.Qt.TextFlag.TextWordWrap, text).height() for text in texts)
        margins = self.layout().contentsMargins()
        self.setFixedWidth(width + margins.left() + margins.right() + NAME_PADDING)
        self.name.setFixedHeight(height + 2 * self.name.margin())

    def clear(self) -> None:
        self._set_name(WAITING_TEXT, DIM_TEXT_COLOUR)
        self.confidence.setText("")
        self.truth.setText("")
        self.accuracy.setText("")
        self.bars.set_scores(np.zeros(len(self.class_names)), None)

    def show_decision(self, decision: Decision) -> None:
        label = decision.label
        colour = DIM_TEXT_COLOUR if label is None else class_colour(label)
        self._set_name(label_name(label, self.class_names), colour)
        self.confidence.setText(confidence_text(decision))
        self.bars.set_scores(decision.scores, label)

    def show_truth(self, true_label: int | None, predicted: int | None, accuracy: str) -> None:
        """The labelled gesture now (None between gestures) and the running accuracy."""
        if true_label is None:
            name, colour, mark = NO_GESTURE_NAME, DIM_TEXT_COLOUR, ""
        else:
            name, colour = label_name(true_label, self.class_names), class_colour(true_label)
            mark = RIGHT_MARK if predicted == true_label else WRONG_MARK
        self.truth.setText(f"true: <b style='color:{colour}'>{name}</b>{mark}")
        self.accuracy.setText(accuracy)

    def _set_name(self, text: str, colour: str) -> None:
        self.name.setText(text)
        self.name.setStyleSheet(f"color: {colour}")


def two_line_width(metrics: QtGui.QFontMetrics, text: str) -> int:
    """The narrowest width that shows ``text`` on one line or on two, broken at a space."""
    words = text.split(" ")
    splits = (max(metrics.horizontalAdvance(" ".join(words[:k])), metrics.horizontalAdvance(" ".join(words[k:])))
              for k in range(1, len(words)))
    return min((metrics.horizontalAdvance(text), *splits))  # one word: its own width


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

    def show(self, view: TimelineView) -> None:
        """Draw the runs over ``[start_us, end_us)``, in seconds since ``origin_us`` (no truth:
        an unlabelled source, that row stays empty)."""
        for row, runs in ((PREDICTED_ROW, view.predicted), (TRUE_ROW, view.truth or [])):
            self.rows[row].setOpts(
                x0=(np.array([run.start_us for run in runs]) - view.origin_us) / US_PER_S,
                width=np.array([run.end_us - run.start_us for run in runs]) / US_PER_S,
                y=np.full(len(runs), row), height=ROW_HEIGHT, pen=None,
                brushes=[pg.mkBrush(class_colour(run.label)) for run in runs])
        self.setXRange((view.start_us - view.origin_us) / US_PER_S, (view.end_us - view.origin_us) / US_PER_S,
                       padding=0)


class SettingsPanel(QtWidgets.QWidget):
    """The pipeline's settings as controls, made from the schema
    (:data:`~livegesture.pipeline.settings.SETTING_SPECS`): a combo box for a setting with
    choices, a file button for a file, a check box for a switch, a spin box bounded as the
    setting for a number; the setting's help as the tooltip. ``changed(name, value)`` is
    emitted when the user changes one; :meth:`show_settings` sets them all without emitting."""

    changed = QtCore.Signal(str, object)
    choose_model = QtCore.Signal()

    def __init__(self) -> None:
        super().__init__()
        form = QtWidgets.QFormLayout(self)
        self.controls: dict[str, QtWidgets.QWidget] = {}
        for name, spec in SETTING_SPECS.items():
            if name in TOOLBAR_SETTINGS or name in VIEW_SETTINGS:
                continue
            control = self._control(spec)
            control.setToolTip(option_help(spec))
            self.controls[name] = control
            form.addRow(name.replace("_", " "), control)

    def _control(self, spec: SettingSpec) -> QtWidgets.QWidget:
        emit = lambda value, name=spec.name: self.changed.emit(name, value)  # noqa: E731
        if spec.choices is not None:
            control = QtWidgets.QComboBox()
            control.addItems(spec.choices)
            control.currentTextChanged.connect(emit)
        elif spec.name in FILE_SETTINGS:
            control = QtWidgets.QPushButton()
            control.clicked.connect(self.choose_model.emit)
        elif spec.kind is bool:
            control = QtWidgets.QCheckBox()
            control.toggled.connect(emit)
        elif spec.kind is str:  # free text (a remote server's HOST:PORT), taken when the editing ends
            control = QtWidgets.QLineEdit()
            control.setPlaceholderText(METAVARS.get(spec.name, ""))
            control.editingFinished.connect(lambda: emit(control.text().strip()))
        else:
            control = QtWidgets.QDoubleSpinBox() if spec.kind is float else QtWidgets.QSpinBox()
            if spec.kind is float:
                control.setDecimals(FLOAT_DECIMALS)
            control.setRange(spec.low, spec.high)
            control.setSingleStep(SPIN_STEPS.get(spec.name, 1))
            control.setKeyboardTracking(False)  # typing 2500 changes the setting once, at the end
            control.setAccelerated(True)
            control.valueChanged.connect(emit)
        return control

    def set_switching(self, switching: bool) -> None:
        """While another backend, model or remote server loads, none can be changed again."""
        for name in ("backend", "model", "remote"):
            self.controls[name].setEnabled(not switching)

    def show_settings(self, settings: PipelineSettings) -> None:
        for control in self.controls.values():
            control.blockSignals(True)
        try:
            for name, control in self.controls.items():
                value = getattr(settings, name)
                if isinstance(control, QtWidgets.QComboBox):
                    control.setCurrentText(value)
                elif isinstance(control, QtWidgets.QPushButton):
                    control.setText(QtCore.QFileInfo(value).fileName())
                    control.setToolTip(f"{value}\nclick to choose another model file")
                elif isinstance(control, QtWidgets.QCheckBox):
                    control.setChecked(value)
                elif isinstance(control, QtWidgets.QLineEdit):
                    control.setText(value)
                else:
                    control.setValue(value)
        finally:
            for control in self.controls.values():
                control.blockSignals(False)


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
