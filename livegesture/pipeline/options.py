"""The pipeline settings as command-line options, made from the one schema
(:data:`~livegesture.pipeline.settings.SETTING_SPECS`), and read back.

Each option is named as its field (``--events-per-frame``), states the field's help and
bounds, and defaults to None: "from the config file". Validation is the settings' own, so
an option out of range gets the same one-line error as a bad config file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from livegesture.pipeline.settings import (
    LIVE_ONLY,
    SETTING_SPECS,
    PipelineSettings,
    SettingSpec,
    load_settings,
    model_window,
    window_warning,
)

FILE_SETTINGS = ("model",)
"""Settings that name a file: given on the command line, a relative path is taken from the current folder."""
METAVARS = {**{name: "FILE" for name in FILE_SETTINGS}, "remote": "HOST:PORT"}
"""How the help names the value of a string setting that is not free text."""
ITEM_NAMES = {"roi": ("X", "Y", "SIDE")}
"""The items of each tuple setting as its option names them (an option takes them all: its ``nargs``)."""


def option_help(spec: SettingSpec) -> str:
    """The field's help, with its range when it has one."""
    bounds = spec.bounds_text()
    return f"{spec.help} ({bounds})" if bounds else spec.help


def option_arguments(spec: SettingSpec) -> dict[str, Any]:
    """``add_argument`` keywords of one setting."""
    if spec.kind is bool:
        return {"action": argparse.BooleanOptionalAction, "help": option_help(spec)}
    if spec.kind is tuple:
        items = ITEM_NAMES[spec.name]
        return {"type": int, "nargs": len(items), "metavar": items, "help": option_help(spec)}
    extra: dict[str, Any] = {"metavar": METAVARS[spec.name]} if spec.name in METAVARS else {}
    return {"type": spec.kind, "help": option_help(spec), **extra}  # choices: the settings' own one-line error


def add_setting_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                        names: Iterable[str] | None = None, *, live: bool = True) -> None:
    """Add an option per setting in ``names`` (default: all; without the live-only ones unless ``live``)."""
    chosen = SETTING_SPECS if names is None else {name: SETTING_SPECS[name] for name in names}
    for name, spec in chosen.items():
        if live or spec.scope != LIVE_ONLY:
            parser.add_argument("--" + name.replace("_", "-"), **option_arguments(spec))


def settings_from_args(args: argparse.Namespace) -> PipelineSettings:
    """The config file's settings (``args.config`` or the default file), overridden by every
    setting option given; a warning on stderr when they lie far outside the live window the
    model was trained on (:func:`~livegesture.pipeline.settings.window_warning`)."""
    changes = {name: getattr(args, name) for name in SETTING_SPECS if getattr(args, name, None) is not None}
    for name in FILE_SETTINGS:
        if name in changes:
            changes[name] = str(Path(changes[name]).expanduser().resolve())
    settings = load_settings(getattr(args, "config", None), changes)
    warning = window_warning(settings, model_window(settings.model))
    if warning:
        print(f"livegesture: warning: {warning}", file=sys.stderr)
    return settings
