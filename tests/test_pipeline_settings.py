"""Pipeline settings: validation naming the field, and the TOML config file."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.integrate import DEFAULT_EVENTS_PER_FRAME
from livegesture.backends import DRAIN_STEPS, TIMESTEPS
from livegesture.model.files import DEFAULT_MODEL
from livegesture.pipeline.settings import (
    SETTING_SPECS,
    CONFIG_ENV,
    PipelineSettings,
    SettingsError,
    default_config_path,
    load_settings,
    model_window,
    save_settings,
    window_warning,
)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    """Never touch the user's real config file."""
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "default" / "config.toml"))


def test_defaults_are_the_reference_deployment():
    s = PipelineSettings()
    assert (s.events_per_frame, s.clear_every, s.drain_steps) == (DEFAULT_EVENTS_PER_FRAME, TIMESTEPS, DRAIN_STEPS)
    assert (s.mode, s.model, s.lossless) == ("periodic", str(DEFAULT_MODEL), False)


@pytest.mark.parametrize("field, value", [
    ("events_per_frame", 0), ("events_per_frame", 2.5), ("events_per_frame", True), ("frames_per_window", 0),
    ("clear_every", 0), ("drain_steps", -1), ("mode", "sometimes"), ("smoothing", 0), ("min_confidence", 1.5),
    ("min_output_spikes", -1), ("switch_margin", -0.1), ("noise_filter", "yes"), ("backend", "gpu"),
    ("model", ""), ("speed", -1.0), ("speed", float("inf")), ("speed", float("nan")), ("lossless", 1),
    # every number has an upper bound too
    ("events_per_frame", 10_000_001), ("frames_per_window", 1_001), ("clear_every", 1_001), ("drain_steps", 101),
    ("smoothing", 101), ("min_output_spikes", 1_000_001), ("speed", 1_001.0),
])
def test_a_bad_value_is_refused_naming_the_field(field, value):
    with pytest.raises(SettingsError, match=rf"^setting {field} .*got {value!r}"):
        PipelineSettings(**{field: value})
    with pytest.raises(SettingsError, match=rf"^setting {field} "):
        PipelineSettings().replace(**{field: value})


def test_staggered_mode_needs_a_window_of_two_frames():
    with pytest.raises(SettingsError, match="clear_every must be at least 2 in staggered mode"):
        PipelineSettings(mode="staggered", clear_every=1)
    assert PipelineSettings(mode="staggered", clear_every=2).clear_every == 2


def test_replace_returns_a_validated_copy_and_refuses_unknown_names():
    s = PipelineSettings()
    t = s.replace(clear_every=4, speed=3)
    assert (t.clear_every, t.speed, s.clear_every) == (4, 3.0, TIMESTEPS)
    assert isinstance(t.speed, float)
    with pytest.raises(SettingsError, match="unknown setting colour"):
        s.replace(colour="red")


def test_config_path_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "x.toml"))
    assert default_config_path() == tmp_path / "x.toml"
    monkeypatch.delenv(CONFIG_ENV)
    assert default_config_path().parts[-3:] == (".config", "livegesture", "config.toml")


def test_missing_file_gives_defaults():
    assert not default_config_path().exists()
    assert load_settings() == PipelineSettings()


def test_save_and_load_round_trip_keeping_other_tables(tmp_path):
    path = tmp_path / "sub" / "config.toml"
    path.parent.mkdir()
    path.write_text('[gui]\ntheme = "dark"\n\n[pipeline]\nclear_every = 3\n')
    assert load_settings(path).clear_every == 3
    settings = PipelineSettings(events_per_frame=1500, mode="staggered", smoothing=4, min_confidence=0.5,
                                noise_filter=True, backend="fast-sparse", model="/m.npz", speed=0, lossless=True)
    assert save_settings(settings, path) == path
    assert load_settings(path) == settings
    assert '[gui]\ntheme = "dark"' in path.read_text()


def test_save_defaults_to_the_configured_path():
    path = save_settings(PipelineSettings(drain_steps=2))
    assert path == default_config_path() and load_settings().drain_steps == 2


@pytest.mark.parametrize("text, problem", [
    ("[pipeline\n", "not valid TOML"),
    ("[pipeline]\nclear_every = 0\n", r"\[pipeline\] setting clear_every must be in 1-1,000, got 0"),
    ('[pipeline]\nsmoothing = "3"\n', r"\[pipeline\] setting smoothing must be an integer, got '3'"),
    ("[pipeline]\nspeeed = 2\n", r"\[pipeline\] unknown setting speeed"),
    ("pipeline = 3\n", r"\[pipeline\] must be a table"),
])
def test_a_bad_file_is_an_error_naming_file_and_key(tmp_path, text, problem):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=rf"^{path}: {problem}"):
        load_settings(path)


def test_a_config_file_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[pipeline]\nmodel = "mod\xe8le.npz"\n')  # Latin-1, as an old editor saves it
    with pytest.raises(SettingsError, match=rf"^{path}: not valid TOML: not UTF-8 text \(byte 23\)$"):
        load_settings(path)


def test_the_schema_states_every_bound_and_the_fields_obey_it():
    for spec in SETTING_SPECS.values():
        assert spec.help and isinstance(getattr(PipelineSettings(), spec.name), spec.kind)
        if spec.kind in (int, float) and spec.low is not None:  # both ends are accepted, one step beyond is not
            step = 1 if spec.kind is int else 1e-9
            for value in (spec.low, spec.high):
                assert getattr(PipelineSettings().replace(**{spec.name: value}), spec.name) == value
            for value in (spec.low - step, spec.high + step):
                with pytest.raises(SettingsError, match=f"^setting {spec.name} must be in {spec.bounds_text()}"):
                    PipelineSettings().replace(**{spec.name: value})
        assert spec.kind is not int or spec.low is not None, f"{spec.name} has no bounds"
    assert SETTING_SPECS["drain_steps"].bounds_text() == "0-100"
    assert SETTING_SPECS["events_per_frame"].bounds_text() == "1-10,000,000"
    assert SETTING_SPECS["backend"].choices == ("auto", "fast", "fast-sparse", "simplesim", "cri")


@pytest.fixture
def live_model(tmp_path) -> str:
    """A model file trained (so its metadata says) on live windows of 300-900 events per frame."""
    from livegesture.backends.testing import random_network
    from livegesture.model.config import LiveWindow
    from livegesture.model.files import ModelInfo, save_model

    network = random_network(np.random.default_rng(0))
    info = ModelInfo(class_names=tuple(map(str, range(network.num_outputs))),
                     live_window=LiveWindow((300, 900), 520, clear_every=8, drain_steps=5))
    return str(save_model(tmp_path / "live.npz", network, info))


def test_a_model_trained_on_live_windows_gives_the_window_defaults(tmp_path, live_model):
    settings = load_settings(tmp_path / "none.toml", {"model": live_model})
    assert (settings.events_per_frame, settings.clear_every, settings.drain_steps) == (520, 8, 5)
    assert window_warning(settings, model_window(live_model)) is None
    config = tmp_path / "config.toml"
    config.write_text(f'[pipeline]\nmodel = "{live_model}"\nclear_every = 10\n')
    from_file = load_settings(config)
    assert (from_file.events_per_frame, from_file.clear_every) == (520, 10)  # the file wins where it speaks
    assert load_settings(config, {"events_per_frame": 5000}).events_per_frame == 5000  # and an option over both
    warning = window_warning(load_settings(config, {"events_per_frame": 5000}), model_window(live_model))
    assert warning == ("the model was not trained for events_per_frame 5,000 (trained on 300-900), "
                       "clear_every 10 (trained on 8): expect lower accuracy")
    assert window_warning(from_file.replace(events_per_frame=1300, clear_every=8), model_window(live_model)) is None


def test_a_model_without_a_live_window_keeps_the_plain_defaults(tmp_path):
    settings = load_settings(tmp_path / "none.toml", {"model": str(tmp_path / "missing.npz")})
    assert settings.events_per_frame == PipelineSettings().events_per_frame
    assert model_window(tmp_path / "missing.npz") is None


def test_noise_filter_and_roi_settings_round_trip_and_are_checked(tmp_path):
    path = tmp_path / "config.toml"
    settings = PipelineSettings(noise_filter=True, noise_filter_kind="fast-decay", noise_filter_window_us=7000,
                                roi=[10, 20, 200])
    assert settings.roi == (10, 20, 200)  # TOML and the command line give lists
    save_settings(settings, path)
    assert "roi = [" in path.read_text()
    assert load_settings(path) == settings
    assert load_settings(tmp_path / "none.toml").roi == ()
    for bad, problem in (({"noise_filter_kind": "median"}, "noise_filter_kind must be one of"),
                         ({"noise_filter_window_us": 0}, "noise_filter_window_us must be in 1-10,000,000"),
                         ({"noise_filter_window_us": 10_000_001}, "must be in 1-10,000,000, got 10000001"),
                         ({"roi": [1, 2]}, r"roi must have 0 or 3 items, got \[1, 2\]"),
                         ({"roi": [1, 2, 0]}, "roi must have a SIDE of at least 1"),
                         ({"roi": [-1, 2, 3]}, "roi must have items in 0-65,535"),
                         ({"roi": [1.5, 2, 3]}, "roi must be a list of integers"),
                         ({"roi": [True, 2, 3]}, "roi must be a list of integers"),
                         ({"roi": "1 2 3"}, "roi must be a list of integers")):
        with pytest.raises(SettingsError, match=problem):
            PipelineSettings().replace(**bad)
