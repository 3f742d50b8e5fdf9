"""hs_api's own simulator (``simple_sim``): the executable reference for parity.

It holds dense ``neurons x neurons`` and ``axons x neurons`` weight matrices of fixed-point
numbers, so only small networks fit (:data:`MAX_DENSE_ENTRIES`). Two shortcuts, both
checked against hs_api's own code by the tests, keep it usable:

* the weight matrices are built in one call instead of hs_api's synapse-by-synapse
  ``gen_weights``, whose every assignment re-checks the whole matrix (minutes for a
  thousand neurons); the resulting ``Fxp`` matrices are the same;
* steps call ``simple_sim.step_run`` with the connectome's indices: ``CRI_network.step``
  does the same plus a listing of every potential that costs O(neurons**2) per step.

Every hs_api generation (:mod:`~livegesture.backends.hsapi`) works: the simulator gets the
arguments that generation's own ``target="simpleSim"`` passes, and the neuron models of C and
D are set so that it computes what the fast backend computes.
"""

from __future__ import annotations

import numpy as np

from livegesture.backends.base import Backend
from livegesture.backends.hsapi import cri_network, detect_generation, installed_cri_network, simulator_arguments
from livegesture.backends.network import Network, NetworkError, synapse_list

MAX_DENSE_ENTRIES = 2 ** 26
"""Largest ``(axons + neurons) * neurons`` accepted (about 1 GiB of hs_api's dense matrices)."""


def _simple_sim_class():
    from fxpmath import Fxp
    from hs_api._simple_sim import simple_sim

    class VectorizedSimpleSim(simple_sim):
        """hs_api's ``simple_sim`` with ``gen_weights`` done in one assignment per matrix."""

        def gen_weights(self) -> None:
            n_neurons, n_axons = len(self.connections), len(self.axons)
            self.neuronWeights = self._transposed_matrix(self.connections, n_neurons, n_neurons)
            self.axonWeights = self._transposed_matrix(self.axons, n_axons, n_neurons)

        def _transposed_matrix(self, synapses: dict, rows: int, cols: int) -> Fxp:
            dense = np.zeros((rows, cols))
            for pre, value in synapses.items():
                for post, weight in synapse_list(value):
                    dense[pre, post] = weight  # last one wins, as in hs_api (duplicates are refused earlier)
            # Weights are already checked to be int16, so 'wrap' changes nothing and skips the
            # element-by-element saturation check; the matrix then saturates like hs_api's.
            matrix = Fxp(dense.T, dtype=self.formatDict["synapse_weights"], overflow="wrap")
            matrix.config.overflow = "saturate"
            return matrix

    return VectorizedSimpleSim


class SimpleSimBackend(Backend):
    """hs_api ``CRI_network`` with its ``simple_sim``."""

    name = "simplesim"

    def __init__(self, network: Network) -> None:
        super().__init__(network)
        entries = (network.num_axons + network.num_neurons) * network.num_neurons
        if entries > MAX_DENSE_ENTRIES:
            raise NetworkError(f"simpleSim holds dense weight matrices: {network.num_neurons:,} neurons and "
                               f"{network.num_axons:,} axons need {entries:,} entries (limit {MAX_DENSE_ENTRIES:,}); "
                               "use the fast backend")
        graph = network.graph
        # Built as CRI_network(target="simpleSim") builds it, with the vectorized weights.
        self.cri_network = net = cri_network(graph, target="none")
        self.generation = detect_generation(installed_cri_network())
        args, kwargs = simulator_arguments(self.generation, graph, net)
        net.simpleSim = _simple_sim_class()(*args, **kwargs)
        net.target = "simpleSim"
        connectome = net.connectome
        self._axon_index = np.array([connectome.get_neuron_by_key(k).get_coreTypeIdx() for k in graph.axon_keys])
        output_keys = [graph.neuron_keys[i] for i in graph.outputs]
        self._output_position = {connectome.get_neuron_by_key(k).get_coreTypeIdx(): i
                                 for i, k in enumerate(output_keys)}

    def _reset(self) -> None:
        sim = self.cri_network.simpleSim
        sim.initialize_sim_vars(sim.numNeurons)

    def _step(self, axons: np.ndarray) -> np.ndarray:
        _, fired = self.cri_network.simpleSim.step_run(self._axon_index[axons].tolist())
        spikes = np.zeros(self.num_outputs, dtype=np.int64)
        for index in fired:
            spikes[self._output_position[index]] += 1
        return spikes
