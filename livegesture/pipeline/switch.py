"""The worker's engine brought up to the settings: reconfigured in place, or replaced for
another backend, model or remote server. A replacement that cannot be made is a result, not a side effect:
the previous engine runs on and :class:`EngineUpdate` says why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from livegesture.backends import Network
from livegesture.events import SensorSize, error_message
from livegesture.model.files import load_model
from livegesture.pipeline.engine import PredictionEngine, engine_settings, make_engine
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources.labels import CLASS_NAMES


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """DVS Gesture's names for an 11-output net, else ``class 0``, ``class 1``, ..."""
    return CLASS_NAMES if num_classes == len(CLASS_NAMES) else tuple(f"class {k}" for k in range(num_classes))


@dataclass(frozen=True)
class RunningModel:
    """The network the worker runs, the setting it came from and its outputs' names."""

    network: Network
    path: str
    """``settings.model`` it was loaded from."""
    class_names: tuple[str, ...]
    sensor_size: SensorSize | None = None
    """The sensor the model was trained on (None: a network given without its file)."""

    @classmethod
    def of(cls, network: Network, path: str, class_names: Sequence[str] | None = None,
           sensor_size: SensorSize | None = None) -> RunningModel:
        return cls(network, path, tuple(class_names or default_class_names(network.num_outputs)), sensor_size)

    @classmethod
    def load(cls, path: str) -> RunningModel:
        """The model file at ``path`` (:class:`~livegesture.model.files.ModelFileError` naming it)."""
        model = load_model(path)
        return cls.of(model.network, path, model.info.class_names, model.info.sensor_size)


@dataclass(frozen=True)
class EngineUpdate:
    """What :func:`update_engine` made of a settings change."""

    engine: PredictionEngine
    model: RunningModel
    error: str | None = None
    """Why the requested backend or model could not run (``engine`` and ``model`` are then the
    previous ones, taking the other settings); None when everything requested is in force."""


def update_engine(engine: PredictionEngine, model: RunningModel, settings: PipelineSettings,
                  backend_options: dict[str, Any] | None = None) -> EngineUpdate:
    """``engine`` (running ``model``) brought up to ``settings``: the same engine, restarted if
    its schedule or prediction settings changed; a new one (the old one closed) for another
    backend, model or remote server (:func:`~livegesture.pipeline.engine.make_engine`); on a bad
    model file, a backend this machine cannot run or a server that cannot be reached, the old
    one with the error."""
    if (settings.backend, settings.model, settings.remote) == (engine.settings.backend, model.path,
                                                               engine.settings.remote):
        if engine_settings(settings) != engine_settings(engine.settings):
            engine.reconfigure(settings)
        return EngineUpdate(engine, model)
    try:
        wanted = model if settings.model == model.path else RunningModel.load(settings.model)
        fresh = make_engine(wanted.network, settings, backend_options=backend_options)
    except Exception as err:  # a bad model file, a backend this machine lacks, no server: keep the running one
        kept = settings.replace(backend=engine.settings.backend, model=model.path, remote=engine.settings.remote)
        return replace(update_engine(engine, model, kept, backend_options), error=error_message("settings", err))
    engine.close()
    return EngineUpdate(fresh, wanted)
