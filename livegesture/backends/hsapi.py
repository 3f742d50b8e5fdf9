"""Building hs_api's ``CRI_network`` from a :class:`CriGraph`, for every hs_api generation in the wild.

Four shapes of ``hs_api.api.CRI_network`` (repository Integrated-Systems-Neuroengineering/hs_api),
told apart from the installed code by :func:`detect_generation`:

* **A** PyPI 0.1.7: ``(axons, connections, config, outputs, target, simDump, coreID,
  perturbMag, leak)``, plain synapse lists, one global ``"I&F"`` neuron from ``config``; calls
  ``hs_bridge.network(connectome, outputs, config, simDump=, leak=, shift=, coreOveride=)``.
* **B** branches ``seperate_network`` / ``sparsefxp``: the same constructor; calls
  ``network(..., config, simDump=, leak=, perturbMag=, coreOveride=)`` (PyPI hs_bridge 0.10.6 takes that).
* **C** ``main`` @154edfb: no ``leak`` / ``perturbMag``; ``connections[key] = (synapses,
  neuron_model)``; calls ``network(connectome, outputs, config, simDump=, coreOveride=)``. Its
  simulator fires on ``V >= threshold`` and adds membrane noise unless every shift is -16.
* **D** ``dev`` @f094b2d: ``(axons, connections, outputs, target, simDump, coreID)``, no
  ``config``; calls ``network(connectome, outputs, simDump=, coreOveride=)``. Its simulator
  fires on ``V > threshold`` and adds no noise.

C and D know only ``LIF_neuron(threshold, shift, leak)`` and ``ANN_neuron``; the fast
backend's neuron is an LIF neuron with its leak shift. The parameters are chosen so that every
target computes what the fast backend computes (fire on ``V > threshold``, reset to 0, ``V -=
V >> leak``, 35-bit potentials): on hardware the threshold as it is (the RTL compares signed
``V > threshold``), ``shift`` :data:`HARDWARE_NOISE_OFF` and ``legacy_noise_en = 1`` (35-bit
potentials, arithmetic leak shift; read from the model object by the hs_api of current CRI
hosts) per hiaer-spike-hardware ``docs/01_bitstream_history.md`` and
``docs/03_neuron_parameter_encoding.md``; in C's simulator ``threshold + 1`` and shift -16.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from dataclasses import dataclass

from livegesture.backends.network import CriGraph
from livegesture.events import LivegestureError

NEURON_TYPE = "I&F"
NEURON_MODELS_MODULE = "hs_api.neuron_models"
HARDWARE_TARGET = "CRI"
HARDWARE_NOISE_OFF = -17
"""``shift`` that disables the membrane noise on the L6d and later bitstreams (signed 6-bit
field); ``shift = 0`` enables it there."""
LEGACY_NOISE_EN = 1
"""35-bit membrane potentials with an arithmetic leak shift (0 gives 32 bits and a logical shift)."""
NEEDS_HS_BRIDGE = "the cri backend needs a CRI host with hs_bridge"


class HsApiError(LivegestureError, RuntimeError):
    """hs_api (or hs_bridge on a CRI host) is missing or cannot run this network."""


@dataclass(frozen=True)
class Generation:
    """What one hs_api generation's ``CRI_network`` takes and calls."""

    name: str
    where: str
    takes_config: bool
    neuron_models: bool
    """``connections[key] = (synapses, neuron_model)`` rather than plain synapse lists."""
    bridge_positional: int
    """Positional arguments it passes to ``hs_bridge.network`` (connectome, outputs[, config])."""
    bridge_keywords: tuple[str, ...]
    """Keyword arguments it passes to ``hs_bridge.network``."""
    sim_threshold_offset: int = 0
    """Added to the threshold in its simulator: 1 where that fires on ``V >= threshold``."""
    sim_noise_off: int = HARDWARE_NOISE_OFF
    """Neuron ``shift`` at which its simulator adds no noise."""

    def describe(self) -> str:
        return f"hs_api generation {self.name} ({self.where})"


GENERATIONS = {
    "A": Generation("A", "PyPI 0.1.7", True, False, 3, ("simDump", "leak", "shift", "coreOveride")),
    "B": Generation("B", "branches seperate_network / sparsefxp", True, False, 3,
                    ("simDump", "leak", "perturbMag", "coreOveride")),
    "C": Generation("C", "main @154edfb", True, True, 3, ("simDump", "coreOveride"), sim_threshold_offset=1,
                    sim_noise_off=-16),
    "D": Generation("D", "dev @f094b2d", False, True, 2, ("simDump", "coreOveride")),
}
_SHIFT_KEYWORD = re.compile(r"\bshift\s*=")


def installed_cri_network() -> type:
    """The installed ``hs_api.api.CRI_network``; :class:`HsApiError` when hs_api does not import."""
    try:
        from hs_api.api import CRI_network
    except ImportError as err:
        raise HsApiError(f"hs_api is not installed or does not import: {err}") from err
    return CRI_network


def detect_generation(cri_network_class: type) -> Generation:
    """The generation of ``cri_network_class`` from its signature (A and B, which share one,
    by the keyword their source passes to ``hs_bridge.network``: ``shift=`` in A)."""
    params = inspect.signature(cri_network_class).parameters
    if "config" not in params:
        return GENERATIONS["D"]
    if "leak" not in params:
        return GENERATIONS["C"]
    try:
        source = inspect.getsource(cri_network_class.__init__)
    except (OSError, TypeError):  # no source (a compiled install): the PyPI release is the likelier
        return GENERATIONS["A"]
    return GENERATIONS["A"] if _SHIFT_KEYWORD.search(source) else GENERATIONS["B"]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def check_bridge(generation: Generation, bridge_network: object) -> None:
    """:class:`HsApiError` when ``hs_bridge.network`` cannot take the call ``generation`` makes
    (the one mismatch known: hs_api 0.1.7's ``shift=`` against hs_bridge 0.10.6)."""
    try:
        signature = inspect.signature(bridge_network)
    except (TypeError, ValueError):  # not introspectable: let the call itself decide
        return
    placeholders = [None] * generation.bridge_positional
    try:
        signature.bind(*placeholders, **dict.fromkeys(generation.bridge_keywords))
    except TypeError as err:
        raise HsApiError(f"{generation.describe()}, hs_api {_version('hs-api')}, calls hs_bridge.network(" +
                         ", ".join(["connectome", "outputs", "config"][:generation.bridge_positional] +
                                   [f"{k}=" for k in generation.bridge_keywords]) +
                         f") but hs_bridge {_version('hs-bridge')} takes network{signature} ({err}); install "
                         "the hs_api / hs_bridge pair your CRI host's documentation names") from None


def neuron_model(generation: Generation, threshold: int, leak: int, target: str) -> object:
    """The ``LIF_neuron`` every neuron of a C or D network gets (see the module docstring)."""
    try:
        lif_neuron = importlib.import_module(NEURON_MODELS_MODULE).LIF_neuron
    except (ImportError, AttributeError) as err:
        raise HsApiError(f"{generation.describe()} takes per-neuron models but {NEURON_MODELS_MODULE}.LIF_neuron "
                         f"is missing ({err})") from err
    if target == HARDWARE_TARGET:
        model = lif_neuron(int(threshold), HARDWARE_NOISE_OFF, int(leak))
        model.legacy_noise_en = LEGACY_NOISE_EN
        return model
    return lif_neuron(int(threshold) + generation.sim_threshold_offset, generation.sim_noise_off, int(leak))


def cri_network(graph: CriGraph, target: str, **options: object):
    """An ``hs_api.api.CRI_network`` of ``graph`` for ``target`` ("CRI", "simpleSim", or any
    other to build only the connectome), whatever generation is installed."""
    cri_network_class = installed_cri_network()
    generation = detect_generation(cri_network_class)
    if target == HARDWARE_TARGET:
        try:
            from hs_bridge import network as bridge_network
        except ImportError as err:
            raise HsApiError(f"{NEEDS_HS_BRIDGE} ({err})") from err
        check_bridge(generation, bridge_network)
    model = neuron_model(generation, graph.threshold, graph.leak, target) if generation.neuron_models else None
    axons, connections, outputs = graph.to_hs_api(model)
    kwargs: dict[str, object] = dict(axons=axons, connections=connections, outputs=outputs, target=target)
    if generation.takes_config:
        kwargs["config"] = {"neuron_type": NEURON_TYPE, "global_neuron_params": {"v_thr": int(graph.threshold)}}
    if not generation.neuron_models:
        kwargs["leak"] = int(graph.leak)
        kwargs["perturbMag"] = None  # no membrane noise: the generations' defaults differ
    kwargs.update(options)
    return cri_network_class(**kwargs)


def simulator_arguments(generation: Generation, graph: CriGraph, net: object) -> tuple[tuple, dict]:
    """Positional and keyword arguments of this generation's ``simple_sim`` for ``net`` (a
    ``CRI_network`` built by :func:`cri_network`), as its own ``target="simpleSim"`` passes them."""
    outputs = {"outputs": net.connectome.get_outputs_idx()}
    if not generation.takes_config:
        return (net.axons, net.connections), outputs
    threshold = int(graph.threshold)
    if generation.neuron_models:
        return (threshold, net.axons, net.connections), outputs
    return (threshold, net.axons, net.connections), {**outputs, "perturbMag": None, "leak": int(graph.leak)}
