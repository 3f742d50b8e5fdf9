"""Building hs_api's ``CRI_network`` from a :class:`CriGraph`, whatever hs_api version is installed.

hs_api's constructor moves between versions (shared NOTES): 0.1.7 takes
``(axons, connections, config, outputs, target, simDump, coreID, perturbMag, leak)`` with
plain synapse lists; later versions drop ``leak`` and take ``connections[key] =
(synapses, neuron_model)``, and the newest drop ``config`` too. The signature decides.
"""

from __future__ import annotations

import importlib
import inspect

from livegesture.backends.network import CriGraph
from livegesture.events import LivegestureError

NEURON_TYPE = "I&F"
NEURON_MODEL_MODULES = ("hs_api.neuron_models", "hs_api.neuron_models2")
"""Where newer hs_api versions keep their ``IF_neuron`` model class."""


class HsApiError(LivegestureError, RuntimeError):
    """hs_api (or hs_bridge on a CRI host) is missing or cannot run this network."""


def cri_network(graph: CriGraph, target: str, **options: object):
    """An ``hs_api.api.CRI_network`` of ``graph`` for ``target`` ("simpleSim" or "CRI")."""
    try:
        from hs_api.api import CRI_network
    except ImportError as err:
        raise HsApiError(f"hs_api is not installed or does not import: {err}") from err
    params = inspect.signature(CRI_network).parameters
    plain_lists = "leak" in params
    axons, connections, outputs = graph.to_hs_api(None if plain_lists else _if_neuron_model(graph.threshold))
    kwargs: dict[str, object] = dict(axons=axons, connections=connections, outputs=outputs, target=target)
    if "config" in params:
        kwargs["config"] = {"neuron_type": NEURON_TYPE, "global_neuron_params": {"v_thr": int(graph.threshold)}}
    if plain_lists:
        kwargs["leak"] = int(graph.leak)
    if "perturbMag" in params:
        kwargs["perturbMag"] = None  # no membrane noise: CRI_network's default differs between versions
    kwargs.update(options)
    return CRI_network(**kwargs)


def _if_neuron_model(threshold: int) -> object:
    for name in NEURON_MODEL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "IF_neuron"):
            return module.IF_neuron(int(threshold))
    raise HsApiError("the installed hs_api takes per-neuron models but provides no IF_neuron in "
                     + " or ".join(NEURON_MODEL_MODULES))
