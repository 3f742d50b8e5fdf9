"""The live pipeline's settings, validated, and their TOML config file.

The file holds a ``[pipeline]`` table with the fields of :class:`PipelineSettings`;
other tables (a GUI's, say) are left alone when the settings are saved.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from livegesture.backends import BACKENDS
from livegesture.events import LivegestureError
from livegesture.backends.base import DRAIN_STEPS, MAX_DRAIN_STEPS
from livegesture.filters import BACKGROUND_ACTIVITY, DEFAULT_NOISE_WINDOW_US, NOISE_FILTER_KINDS
from livegesture.integrate import (
    DEFAULT_EVENTS_PER_FRAME,
    DEFAULT_FRAMES_PER_WINDOW,
    MAX_EVENTS_PER_FRAME,
    MAX_FRAMES,
    TIMESTEPS,
)
from livegesture.model.config import MIN_OUTPUT_SPIKES, LiveWindow
from livegesture.model.files import DEFAULT_MODEL, MODEL_SUFFIX, load_model

if sys.version_info >= (3, 11):
    import tomllib  # noqa: TID251 - guarded: Python 3.11+
else:  # Python 3.10 (a CRI host)
    import tomli as tomllib

PERIODIC, STAGGERED = "periodic", "staggered"
MODES = (PERIODIC, STAGGERED)
"""How membranes are cleared: see :class:`~livegesture.pipeline.engine.PredictionEngine`."""
AUTO_BACKEND = "auto"
"""Backend name meaning ``cri`` on a CRI host, else ``fast``."""
BACKEND_CHOICES = (AUTO_BACKEND, *BACKENDS)
CONFIG_ENV = "LIVEGESTURE_CONFIG"
"""Environment variable naming the config file (overrides the default location)."""
DEFAULT_CONFIG_PATH = Path("~/.config/livegesture/config.toml")
CONFIG_TABLE = "pipeline"
"""The table of the config file that holds these settings."""

MAX_SMOOTHING = 100
"""Windows averaged: 100 windows of the default 10 x 2,000 events are 1.5-5.5 minutes of a real
DVS128 scene (6-21 k events/s), far longer than any gesture."""
MAX_OUTPUT_SPIKES = 1_000_000
"""A window has at most ``(clear_every + drain_steps) * outputs`` output spikes (12,100 for the
largest window and 11 outputs): a threshold of a million leaves room for nets with many outputs."""
MAX_SPEED = 1_000.0
"""Replay speed factor; beyond it pacing means nothing (0 replays as fast as possible anyway)."""
MAX_NOISE_WINDOW_US = 10_000_000
"""The noise filters' time window: 10 s is 500 times the default; a pixel's neighbours firing
within 10 s says nothing about noise any more (every event passes)."""
MAX_SENSOR_COORDINATE = 65_535
"""A region of interest's X, Y and SIDE: event coordinates are 16-bit (``EVENT_DTYPE``); the sensor
itself bounds them further (checked against it in :mod:`livegesture.geometry`)."""
ROI_LENGTHS = (0, 3)
"""A region of interest is empty (the largest centred square) or X Y SIDE."""

# The decision policy's defaults below were chosen by `livegesture tune` on the validation sessions
# of the shipped model's training set (users 15-17 of seed 0, never the sessions reported): a grid
# of 48 points at 800 and 1,100 events per frame (the previous model's grids had found the best at
# 800, the edge of 216 points at 1,100-2,000); the best balanced accuracy, a tie within a tenth of
# a point going to fewer false switches (livegesture.evaluate.grid.ACCURACY_TIE).
DEFAULT_SMOOTHING = 4
"""Decisions averaged into the running prediction: 4 at 800 events per frame was the best (82.8 %
balanced accuracy, 48 false switches on 165 gestures; 3: 82.8 %, 67; at 1,100 events per frame
up to 82.6 %)."""
DEFAULT_MIN_CONFIDENCE = 0.5
"""Smoothed score the top class needs to be shown (11 classes: chance is 0.09), as tuned: 0.5 and
0.35 tie in balanced accuracy (82.78 against 82.79 %), with 48 false switches against 57."""
DEFAULT_MIN_OUTPUT_SPIKES = 2 * MIN_OUTPUT_SPIKES
"""Output spikes a window needs to count as a gesture at all: twice what idle windows were trained
below, as tuned (8 against 12 and 16)."""
DEFAULT_SWITCH_MARGIN = 0.1
"""Hysteresis: how far another class must lead the shown one to replace it (tuned: 0.1 against 0.25)."""
DEFAULT_MIN_EVENT_RATE = 6_000.0
"""Events per second below which a frame is quiet. On the synthetic training sessions (DVS Gesture
timing, users 1-4 of seed 0): 0.15 % of frames inside gestures, 14 % of those between them
(3-frame rates; the rest between gestures is arm motion or flicker, for the network to reject).
Real DVS128 gesture recordings run at tens of thousands of events per second."""
MAX_EVENT_RATE = 5_000_000.0
"""Events per second: over five times the busiest real scene measured (a DAVIS346, 905 k events/s);
a gate above every scene's rate would say "no gesture" always."""

LIVE_ONLY = "live"
"""Scope of the settings that only a live run has (replay pacing): ``eval`` has no option for them."""


POLICY_SETTINGS = ("smoothing", "min_confidence", "min_output_spikes", "switch_margin")
"""The decision policy: how the window counts become the running prediction (nothing upstream)."""


class SettingsError(LivegestureError, ValueError):
    """A setting out of range or of the wrong type; the message names it."""


@dataclass(frozen=True)
class SettingSpec:
    """One setting as the schema states it: what validation, the command line and the
    window's settings panel read (written once, in :class:`PipelineSettings`' fields)."""

    name: str
    kind: type
    """int, float, str, bool or tuple (of integers; the type of the field's default)."""
    help: str
    low: float | None = None
    high: float | None = None
    """Bounds of the value; of each of its items for a tuple."""
    choices: tuple[str, ...] | None = None
    lengths: tuple[int, ...] | None = None
    """The lengths a tuple may have."""
    scope: str | None = None
    """:data:`LIVE_ONLY`, or None (every command)."""

    def bounds_text(self) -> str:
        """``1-10,000,000``, ``0-1``: the range the help states ('' when unbounded)."""
        if self.low is None:
            return ""
        return f"{self.low:,.12g}-{self.high:,.12g}" if self.kind is float else f"{self.low:,}-{self.high:,}"

    def check(self, value: Any) -> None:
        """Raise :class:`SettingsError` naming the setting when ``value`` does not fit."""
        if self.kind is tuple:
            self._check_items(value)
            return
        if not _fits_type(value, self.kind):
            raise SettingsError(f"setting {self.name} must be {_TYPE_NAMES[self.kind]}, got {value!r}")
        if self.low is not None and not self.low <= value <= self.high:
            raise SettingsError(f"setting {self.name} must be in {self.bounds_text()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise SettingsError(f"setting {self.name} must be one of {', '.join(self.choices)}, got {value!r}")

    def _check_items(self, value: Any) -> None:
        """A tuple of integers, of one of :attr:`lengths`, each item within the bounds."""
        if not isinstance(value, tuple) or not all(_fits_type(item, int) for item in value):
            raise SettingsError(f"setting {self.name} must be {_TYPE_NAMES[tuple]}, got {_shown(value)}")
        if self.lengths is not None and len(value) not in self.lengths:
            counts = " or ".join(str(length) for length in self.lengths)
            raise SettingsError(f"setting {self.name} must have {counts} items, got {_shown(value)}")
        if self.low is not None and not all(self.low <= item <= self.high for item in value):
            raise SettingsError(f"setting {self.name} must have items in {self.bounds_text()}, got {_shown(value)}")


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               tuple: "a list of integers"}


def _fits_type(value: Any, kind: type) -> bool:
    """Booleans are not numbers here; an integer is a fine float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def _shown(value: Any) -> str:
    """A tuple as the config file and the command line write it (a list)."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] | None = None, lengths: tuple[int, ...] | None = None,
            scope: str | None = None) -> Any:
    """A field of :class:`PipelineSettings` with its schema (help, bounds, choices) as metadata."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices,
                                            "lengths": lengths, "scope": scope})


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a user can tune in the live pipeline: each field states its help, bounds and
    choices once (see :data:`SETTING_SPECS`). Construction validates.

    The prediction settings are those of
    :class:`~livegesture.pipeline.decision.RunningPrediction`; the clear schedule that of
    :class:`~livegesture.pipeline.engine.PredictionEngine`.
    """

    events_per_frame: int = setting(DEFAULT_EVENTS_PER_FRAME, "events integrated into one frame",
                                    low=1, high=MAX_EVENTS_PER_FRAME)
    frames_per_window: int = setting(DEFAULT_FRAMES_PER_WINDOW, "frames the integrator keeps for display",
                                     low=1, high=MAX_FRAMES)
    clear_every: int = setting(TIMESTEPS, "frames stepped between membrane clears (one decision window)",
                               low=1, high=MAX_FRAMES)
    drain_steps: int = setting(DRAIN_STEPS, "empty steps after a window's frames, before its decision",
                               low=0, high=MAX_DRAIN_STEPS)
    mode: str = setting(PERIODIC, "periodic (one network, a decision per window) or staggered (two networks "
                                  "half a window apart)", choices=MODES)
    smoothing: int = setting(DEFAULT_SMOOTHING, "decisions averaged into the running prediction",
                             low=1, high=MAX_SMOOTHING)
    min_confidence: float = setting(DEFAULT_MIN_CONFIDENCE, "share of the output spikes a class needs to be named",
                                    low=0.0, high=1.0)
    min_output_spikes: int = setting(DEFAULT_MIN_OUTPUT_SPIKES, "output spikes a window needs to count as a gesture",
                                     low=0, high=MAX_OUTPUT_SPIKES)
    switch_margin: float = setting(DEFAULT_SWITCH_MARGIN, "lead another class needs to replace the one shown",
                                   low=0.0, high=1.0)
    min_event_rate: float = setting(DEFAULT_MIN_EVENT_RATE, "events per second below which the scene is quiet: "
                                                            "no gesture (0: off)", low=0.0, high=MAX_EVENT_RATE)
    noise_filter: bool = setting(False, "a dv-processing noise filter before integration")
    noise_filter_kind: str = setting(BACKGROUND_ACTIVITY, f"the noise filter: {', '.join(NOISE_FILTER_KINDS)}",
                                     choices=NOISE_FILTER_KINDS)
    noise_filter_window_us: int = setting(DEFAULT_NOISE_WINDOW_US, "the noise filter's time window in us (support "
                                                                   "window, half-life or time delta)",
                                          low=1, high=MAX_NOISE_WINDOW_US)
    roi: tuple[int, ...] = setting((), "square region X Y SIDE of the sensor mapped to the network's 128x128 "
                                       "field (default: the largest centred square)",
                                   low=0, high=MAX_SENSOR_COORDINATE, lengths=ROI_LENGTHS)
    backend: str = setting(AUTO_BACKEND, "auto (cri on a CRI host, else fast), fast, fast-sparse, simplesim or cri",
                           choices=BACKEND_CHOICES)
    model: str = setting(str(DEFAULT_MODEL), "model file (.npz, or an hs_api .pkl)")
    speed: float = setting(1.0, "replay speed: 1 real time, N times faster, 0 as fast as possible",
                           low=0.0, high=MAX_SPEED, scope=LIVE_ONLY)
    lossless: bool = setting(False, "a replay waits rather than drops when the network falls behind",
                             scope=LIVE_ONLY)
    remote: str = setting("", "HOST:PORT of a `livegesture serve` that steps the frames (its own backend and "
                              "model; e.g. on a CRI host, through an ssh tunnel); empty: run here")

    def __post_init__(self) -> None:
        if isinstance(self.roi, list):  # as TOML and JSON hold it
            object.__setattr__(self, "roi", tuple(self.roi))
        self.validate()
        for spec in SETTING_SPECS.values():
            if spec.kind is float:
                object.__setattr__(self, spec.name, float(getattr(self, spec.name)))

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first bad field."""
        for spec in SETTING_SPECS.values():
            spec.check(getattr(self, spec.name))
        if self.mode == STAGGERED and self.clear_every < 2:
            raise SettingsError("setting clear_every must be at least 2 in staggered mode (the second instance "
                                f"starts half a window later), got {self.clear_every!r}")
        if not self.model:
            raise SettingsError(f"setting model must name a model file, got {self.model!r}")
        if self.roi and self.roi[2] < 1:
            raise SettingsError(f"setting roi must have a SIDE of at least 1, got {_shown(self.roi)}")
        if self.remote and split_address(self.remote) is None:
            raise SettingsError(f"setting remote must be HOST:PORT (empty: run here), got {self.remote!r}")

    def replace(self, **changes: Any) -> PipelineSettings:
        """A validated copy with ``changes``; an unknown name is a :class:`SettingsError`."""
        unknown = sorted(set(changes) - SETTING_SPECS.keys())
        if unknown:
            raise SettingsError(f"unknown setting {', '.join(unknown)}; known: {', '.join(SETTING_SPECS)}")
        return replace(self, **changes)

    @property
    def replay_speed(self) -> float | None:
        """``speed`` as :class:`~livegesture.sources.replay.ReplaySource` takes it (None = as fast as possible)."""
        return self.speed or None


SETTING_SPECS: dict[str, SettingSpec] = {
    spec.name: SettingSpec(spec.name, type(spec.default), **spec.metadata)
    for spec in fields(PipelineSettings)}
"""The schema of every setting, in field order, read from :class:`PipelineSettings`' fields."""
SETTING_HELP: dict[str, str] = {name: spec.help for name, spec in SETTING_SPECS.items()}
"""One line of help per setting: the command line's and the window's."""


def split_address(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> ``(host, port)``; None when malformed."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        return None
    return host, int(port)


def default_config_path() -> Path:
    """``$LIVEGESTURE_CONFIG``, else ``~/.config/livegesture/config.toml``."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH).expanduser()


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, ``{}`` when it does not exist; :class:`SettingsError` naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise SettingsError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{path}: not valid TOML ({err})") from None
    except UnicodeDecodeError as err:
        raise SettingsError(f"{path}: not valid TOML: not UTF-8 text (byte {err.start})") from None


WINDOW_SETTINGS = ("events_per_frame", "clear_every", "drain_steps")
"""The settings a model trained on live windows gives defaults for."""


def model_window(model: str | Path) -> LiveWindow | None:
    """The live window the model file was trained on; None for a model without one, or one
    that cannot be read (loading it for real reports that). Read once per version of the file
    (the settings' defaults and the warning about them both ask)."""
    path = Path(model)
    if path.suffix != MODEL_SUFFIX:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return _window_of(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _window_of(path: str, _mtime_ns: int, _size: int) -> LiveWindow | None:
    try:
        return load_model(path).info.live_window
    except LivegestureError:
        return None


def window_defaults(window: LiveWindow | None) -> dict[str, int]:
    """Settings defaults from a model's live window (``{}`` without one)."""
    if window is None:
        return {}
    return {"events_per_frame": window.events_per_frame, "clear_every": window.clear_every,
            "drain_steps": window.drain_steps}


def window_warning(settings: PipelineSettings, window: LiveWindow | None) -> str | None:
    """A one-line warning when the settings lie far outside the window the model was trained on."""
    if window is None:
        return None
    low, high = window.events_per_frame_range
    problems = []
    if window.far_outside(settings.events_per_frame):
        problems.append(f"events_per_frame {settings.events_per_frame:,} (trained on {low:,}-{high:,})")
    if settings.clear_every != window.clear_every:
        problems.append(f"clear_every {settings.clear_every} (trained on {window.clear_every})")
    if settings.drain_steps != window.drain_steps:
        problems.append(f"drain_steps {settings.drain_steps} (trained on {window.drain_steps})")
    if not problems:
        return None
    return f"the model was not trained for {', '.join(problems)}: expect lower accuracy"


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineSettings:
    """Settings from the ``[pipeline]`` table of ``path`` (default :func:`default_config_path`),
    then ``overrides`` (e.g. command-line options). What neither sets takes the defaults, and
    for :data:`WINDOW_SETTINGS` the live window of the model they name (:func:`window_defaults`)."""
    path = Path(path).expanduser() if path is not None else default_config_path()
    table = _read_toml(path).get(CONFIG_TABLE, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [{CONFIG_TABLE}] must be a table")
    overrides = overrides or {}
    model = overrides.get("model", table.get("model", str(DEFAULT_MODEL)))
    base = PipelineSettings()
    if isinstance(model, str):
        base = base.replace(**window_defaults(model_window(model)))
    try:
        from_file = base.replace(**table)
    except SettingsError as err:
        raise SettingsError(f"{path}: [{CONFIG_TABLE}] {err}") from None
    return from_file.replace(**overrides)


def save_settings(settings: PipelineSettings, path: str | Path | None = None) -> Path:
    """Write ``settings`` as the ``[pipeline]`` table of ``path`` (default
    :func:`default_config_path`), keeping the file's other tables; returns the path."""
    import tomli_w

    path = Path(path).expanduser() if path is not None else default_config_path()
    document = _read_toml(path)
    document[CONFIG_TABLE] = asdict(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(document))
    except OSError as err:
        raise SettingsError(f"{path}: cannot write the config file ({err.strerror or err})") from None
    return path
