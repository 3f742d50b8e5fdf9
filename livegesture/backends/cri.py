"""The CRI hardware through hs_api (``target="CRI"``) and hs_bridge.

Each sample starts with ``hs_bridge.FPGA_Execution.fpga_controller.clear(neurons, False,
core)`` (membrane clear, as the HiAER-Spike DVS Gesture example does), then one
``CRI_network.step(axon_keys)`` per frame; each step returns ``(output keys that fired,
clock cycles, HBM accesses)``, which ``stats`` accumulates.

Versions: hs_api 0.1.7 calls ``hs_bridge.network(..., leak=, shift=, coreOveride=)``
while hs_bridge 0.10.6 takes ``(connectome, outputs, config, leak, perturbMag, ...)``, so
that pair cannot load a network (:class:`HsApiError` says so); a CRI host needs a
matching pair. Known difference from the simulators: hs_bridge 0.10.6 programs neuron
model 3 (non-leaky I&F) whatever ``leak`` hs_api passes, so on hardware a negative
potential stays put, whereas the simulators (hs_api's included) raise it by 1 per step
(``V -= V >> leak``); a neuron's spikes can differ only if such a creep brings it above
threshold, which needs a potential within a few units of the threshold.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import numpy as np

from livegesture.backends.base import Backend
from livegesture.backends.hsapi import HsApiError, cri_network
from livegesture.backends.network import Network

CONTROLLER = "hs_bridge.FPGA_Execution.fpga_controller"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def hardware_available() -> bool:
    """True on a CRI host: hs_api's ``checkHw`` finds its marker file (``magic.txt``) there."""
    try:
        from hs_api.api import CRI_network
    except ImportError:
        return False
    try:
        return bool(CRI_network.checkHw(None))
    except Exception:  # a future hs_api whose checkHw needs an instance
        return False


class CriBackend(Backend):
    """The network loaded onto CRI hardware."""

    name = "cri"

    def __init__(self, network: Network, core_id: int = 0) -> None:
        super().__init__(network)
        try:
            self._controller = importlib.import_module(CONTROLLER)
        except ImportError as err:
            raise HsApiError(f"the cri backend needs a CRI host with hs_bridge ({CONTROLLER}: {err})") from err
        graph = network.graph
        self.core_id = core_id
        try:
            self.cri_network = cri_network(graph, "CRI", coreID=core_id)
        except TypeError as err:  # hs_api 0.1.7 calls hs_bridge.network(shift=...), which 0.10.6 lacks
            raise HsApiError(f"hs_api {_version('hs-api')} and hs_bridge {_version('hs-bridge')} do not fit "
                             f"together ({err}); install the pair your CRI host's documentation names") from err
        self._axon_keys = graph.axon_keys
        self._output_position = {graph.neuron_keys[i]: n for n, i in enumerate(graph.outputs)}
        self._stats.update(clears=0, clock_cycles=0, hbm_accesses=0, unexpected_spikes=0)

    def _reset(self) -> None:
        self._controller.clear(self.network.num_neurons, False, self.core_id)
        self._stats["clears"] += 1

    def _step(self, axons: np.ndarray) -> np.ndarray:
        keys = [self._axon_keys[i] for i in axons]
        fired, clock_cycles, hbm_accesses = self.cri_network.step(keys)
        spikes = np.zeros(self.num_outputs, dtype=np.int64)
        for key in fired:
            position = self._output_position.get(key)
            if position is None:
                self._stats["unexpected_spikes"] += 1
            else:
                spikes[position] += 1
        self._stats["clock_cycles"] += int(clock_cycles or 0)
        self._stats["hbm_accesses"] += int(hbm_accesses or 0)
        return spikes
