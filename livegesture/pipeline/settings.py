"""The live pipeline's settings, validated, and their TOML config file.

The file holds a ``[pipeline]`` table with the fields of :class:`PipelineSettings`;
other tables (a GUI's, say) are left alone when the settings are saved.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from livegesture.backends import BACKENDS
from livegesture.events import LivegestureError
from livegesture.integrate import DEFAULT_EVENTS_PER_FRAME, DEFAULT_FRAMES_PER_WINDOW
from livegesture.model.config import DRAIN_STEPS, TIMESTEPS
from livegesture.model.files import DEFAULT_MODEL

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

SETTING_HELP: dict[str, str] = {
    "model": "model file (.npz, or an hs_api .pkl)",
    "backend": "auto (cri on a CRI host, else fast), fast, fast-sparse, simplesim or cri",
    "events_per_frame": "events integrated into one frame",
    "frames_per_window": "frames the integrator keeps for display",
    "clear_every": "frames stepped between membrane clears (one decision window)",
    "drain_steps": "empty steps after a window's frames, before its decision",
    "mode": "periodic (one network, a decision per window) or staggered (two networks half a window apart)",
    "smoothing": "decisions averaged into the running prediction",
    "min_confidence": "smoothed score needed to name a gesture (0-1)",
    "min_output_spikes": "output spikes a window needs to count as a gesture",
    "switch_margin": "lead another class needs to replace the one shown (0-1)",
    "noise_filter": "dv-processing's background-activity filter",
    "remote": "HOST:PORT of a `livegesture serve` (e.g. on a CRI host, through an ssh tunnel); empty: run here",
}
"""One line of help per setting: the command line's and the window's."""

DEFAULT_SMOOTHING = 1
"""Decisions averaged into the running prediction. A window of 10 frames already spans most of
a gesture: on the shipped demo sessions, averaging 2 windows lowered the streaming accuracy at
every window size tried (2,000-5,000 events per frame, both modes), blending gestures."""
DEFAULT_MIN_CONFIDENCE = 0.35
"""Smoothed score the top class needs to be shown (11 classes: chance is 0.09)."""
DEFAULT_MIN_OUTPUT_SPIKES = 4
"""Output spikes a window needs to count as a gesture at all."""
DEFAULT_SWITCH_MARGIN = 0.1
"""Hysteresis: how far another class must lead the shown one to replace it."""


class SettingsError(LivegestureError, ValueError):
    """A setting out of range or of the wrong type; the message names it."""


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a user can tune in the live pipeline. Construction validates.

    ``events_per_frame``: events integrated into one frame. ``frames_per_window``: frames
    the integrator keeps for display. ``clear_every``: frames stepped between membrane
    clears (one decision window); ``drain_steps``: empty steps after them; ``mode``:
    ``periodic`` or ``staggered`` (two network instances offset by half a window).
    ``smoothing``: decisions averaged; ``min_confidence``, ``min_output_spikes``,
    ``switch_margin``: when the prediction says "no gesture" and when it changes class
    (see :class:`~livegesture.pipeline.decision.RunningPrediction`). ``noise_filter``:
    dv-processing's background-activity filter before integration. ``backend``: ``auto``
    (``cri`` on a CRI host, else ``fast``) or a backend name; ``model``: model file.
    ``speed``: replay speed, 0 = as fast as possible; ``lossless``: a replay never drops
    anything (producers wait instead; a camera always drops). ``remote``: ``HOST:PORT`` of a
    ``livegesture serve`` that steps the frames (its own backend and model), empty: here.
    """

    events_per_frame: int = DEFAULT_EVENTS_PER_FRAME
    frames_per_window: int = DEFAULT_FRAMES_PER_WINDOW
    clear_every: int = TIMESTEPS
    drain_steps: int = DRAIN_STEPS
    mode: str = PERIODIC
    smoothing: int = DEFAULT_SMOOTHING
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    min_output_spikes: int = DEFAULT_MIN_OUTPUT_SPIKES
    switch_margin: float = DEFAULT_SWITCH_MARGIN
    noise_filter: bool = False
    backend: str = AUTO_BACKEND
    model: str = str(DEFAULT_MODEL)
    speed: float = 1.0
    lossless: bool = False
    remote: str = ""

    def __post_init__(self) -> None:
        self.validate()
        for name, kind in _FIELD_TYPES.items():
            if kind is float:
                object.__setattr__(self, name, float(getattr(self, name)))

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first bad field."""
        for spec in fields(self):
            _check_type(spec.name, getattr(self, spec.name), _FIELD_TYPES[spec.name])
        _check(self.events_per_frame >= 1, "events_per_frame", "must be at least 1", self.events_per_frame)
        _check(self.frames_per_window >= 1, "frames_per_window", "must be at least 1", self.frames_per_window)
        _check(self.clear_every >= 1, "clear_every", "must be at least 1", self.clear_every)
        _check(self.drain_steps >= 0, "drain_steps", "must be 0 or more", self.drain_steps)
        _check(self.mode in MODES, "mode", f"must be one of {', '.join(MODES)}", self.mode)
        _check(self.mode != STAGGERED or self.clear_every >= 2, "clear_every",
               "must be at least 2 in staggered mode (the second instance starts half a window later)",
               self.clear_every)
        _check(self.smoothing >= 1, "smoothing", "must be at least 1", self.smoothing)
        _check(0 <= self.min_confidence <= 1, "min_confidence", "must be in [0, 1]", self.min_confidence)
        _check(self.min_output_spikes >= 0, "min_output_spikes", "must be 0 or more", self.min_output_spikes)
        _check(0 <= self.switch_margin <= 1, "switch_margin", "must be in [0, 1]", self.switch_margin)
        _check(self.backend in BACKEND_CHOICES, "backend", f"must be one of {', '.join(BACKEND_CHOICES)}",
               self.backend)
        _check(bool(self.model), "model", "must name a model file", self.model)
        _check(self.speed >= 0 and math.isfinite(self.speed), "speed",
               "must be 0 (as fast as possible) or a positive factor", self.speed)
        _check(not self.remote or split_address(self.remote) is not None, "remote", "must be HOST:PORT (empty: run here)",
               self.remote)

    def replace(self, **changes: Any) -> PipelineSettings:
        """A validated copy with ``changes``; an unknown name is a :class:`SettingsError`."""
        unknown = sorted(set(changes) - _FIELD_TYPES.keys())
        if unknown:
            raise SettingsError(f"unknown setting {', '.join(unknown)}; known: {', '.join(_FIELD_TYPES)}")
        return replace(self, **changes)

    @property
    def replay_speed(self) -> float | None:
        """``speed`` as :class:`~livegesture.sources.replay.ReplaySource` takes it (None = as fast as possible)."""
        return self.speed or None


_FIELD_TYPES: dict[str, type] = {spec.name: type(spec.default) for spec in fields(PipelineSettings)}


def _check_type(name: str, value: Any, kind: type) -> None:
    """Booleans are not numbers here; an integer is a fine float."""
    if isinstance(value, bool):
        ok = kind is bool
    else:
        ok = isinstance(value, (int, float) if kind is float else kind)
    if not ok:
        raise SettingsError(f"setting {name} must be {_TYPE_NAMES[kind]}, got {value!r}")


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def split_address(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> ``(host, port)``; None when malformed."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        return None
    return host, int(port)


def _check(ok: bool, name: str, problem: str, value: Any) -> None:
    if not ok:
        raise SettingsError(f"setting {name} {problem}, got {value!r}")


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


def load_settings(path: str | Path | None = None) -> PipelineSettings:
    """Settings from the ``[pipeline]`` table of ``path`` (default :func:`default_config_path`);
    defaults for what it does not set, all defaults when the file does not exist."""
    path = Path(path).expanduser() if path is not None else default_config_path()
    table = _read_toml(path).get(CONFIG_TABLE, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [{CONFIG_TABLE}] must be a table")
    try:
        return PipelineSettings().replace(**table)
    except SettingsError as err:
        raise SettingsError(f"{path}: [{CONFIG_TABLE}] {err}") from None


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
