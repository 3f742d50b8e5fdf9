"""hs_api generations B, C and D, and the FPGA behind hs_bridge, as stand-ins for the tests.

Each ``CRI_network`` stand-in has the constructor, the call into ``hs_bridge.network`` and the
simulator semantics that generation has in hs_api's public repository
(Integrated-Systems-Neuroengineering/hs_api: branches ``seperate_network`` / ``sparsefxp``,
``main`` @154edfb, ``dev`` @f094b2d), restated from reading it, and builds its connectome
with connectome_utils as hs_api does. Generation A is the installed PyPI hs_api 0.1.7.

:class:`FakeBridge` is hs_bridge at the FPGA boundary: it records every call with its arguments
and steps the network as the RTL does per hiaer-spike-hardware's docs (fire on signed ``V >
threshold``; noise unless ``shift == -17``; ``legacy_noise_en = 1``: 35-bit potentials and an
arithmetic leak shift, else 32 bits and a logical one), so a wrong parameter changes spikes.
"""

from __future__ import annotations

import sys
import types

import numpy as np
from connectome_utils.connectome import connectome, neuron

HARDWARE_NOISE_OFF = -17
C_SIM_NOISE_OFF = -16
CLOCK_CYCLES_PER_STEP = 1000
HBM_ACCESSES_PER_INPUT = 3


class LIF_neuron:
    def __init__(self, threshold, shift, leak):
        self.threshold, self.shift, self.leak = threshold, shift, leak

    def get_threshold(self):
        return self.threshold

    def get_shift(self):
        return self.shift

    def get_leak(self):
        return self.leak

    def get_neuronModel(self):
        return 2


def step_potentials(v, fired_from_axons, weights_axon, weights_neuron, *, threshold, leak, at_or_above=False,
                    noise=None, bits=35, arithmetic=True):
    """One step: noise, fire (and reset), leak, integrate; saturate to ``bits``. Returns (v, fired)."""
    if noise is not None:
        v = v + noise
    fired = v >= threshold if at_or_above else v > threshold
    v = np.where(fired, 0, v)
    if arithmetic:
        shifted = v >> leak
    else:
        shifted = (v % 2 ** bits) >> leak
    v = v - shifted
    v = v + weights_axon @ fired_from_axons + weights_neuron @ fired.astype(np.int64)
    bound = 2 ** (bits - 1)
    return np.clip(v, -bound, bound - 1), np.flatnonzero(fired)


def _dense(synapses, rows, cols, models):
    matrix = np.zeros((cols, rows), dtype=np.int64)
    for pre, value in synapses.items():
        for post, weight in (value[0] if models else value):
            matrix[post, pre] = weight
    return matrix


def install_bridge(monkeypatch, network_class, clear) -> None:
    """Make ``hs_bridge.network`` and ``hs_bridge.FPGA_Execution.fpga_controller.clear`` these."""
    bridge = types.ModuleType("hs_bridge")
    bridge.network = network_class
    execution = types.ModuleType("hs_bridge.FPGA_Execution")
    controller = types.ModuleType("hs_bridge.FPGA_Execution.fpga_controller")
    controller.clear = clear
    bridge.FPGA_Execution, execution.fpga_controller = execution, controller
    for module in (bridge, execution, controller):
        monkeypatch.setitem(sys.modules, module.__name__, module)


class FakeBridge:
    """hs_bridge: ``network`` of one generation's shape, ``fpga_controller.clear``; calls recorded."""

    def __init__(self, generation: str) -> None:
        self.generation = generation
        self.calls: list[tuple] = []
        self.core = None

    def install(self, monkeypatch) -> None:
        install_bridge(monkeypatch, self.network_class(), self.clear)

    def network_class(self):
        fake = self

        def load(connectome_, outputs, config=None, **options):
            neurons = list(connectome_.get_neurons().values())
            axons = list(connectome_.get_axons().values())
            models = [getattr(n, "neuronModel", None) for n in neurons]
            if models[0] is None:  # A/B: one global I&F neuron from config
                threshold = np.full(len(neurons), config["global_neuron_params"]["v_thr"])
                leak = np.full(len(neurons), 63)  # hs_bridge 0.10.6 programs model 3, no leak
                noise_off, legacy = True, True
                recorded = ("network", int(threshold[0]), options)
            else:
                threshold = np.array([m.get_threshold() for m in models])
                leak = np.array([m.get_leak() for m in models])
                noise_off = all(m.get_shift() == HARDWARE_NOISE_OFF for m in models)
                legacy = all(getattr(m, "legacy_noise_en", 0) == 1 for m in models)
                recorded = ("network", sorted({(m.get_threshold(), m.get_shift(), m.get_leak(),
                                                getattr(m, "legacy_noise_en", 0)) for m in models}), options)
            fake.calls.append(recorded)
            index = {n.get_user_key(): i for i, n in enumerate(neurons)}
            w_axon = np.zeros((len(neurons), len(axons)), dtype=np.int64)
            w_neuron = np.zeros((len(neurons), len(neurons)), dtype=np.int64)
            for matrix, sources in ((w_axon, axons), (w_neuron, neurons)):
                for j, source in enumerate(sources):
                    for s in source.get_synapses():
                        matrix[index[s.get_postsynapticNeuron().get_user_key()], j] = s.get_weight()
            fake.core = dict(v=np.zeros(len(neurons), dtype=np.int64), threshold=threshold, leak=leak,
                             noise_off=noise_off, bits=35 if legacy else 32, arithmetic=legacy,
                             w_axon=w_axon, w_neuron=w_neuron, rng=np.random.default_rng(0))

        class network:
            if fake.generation == "D":
                def __init__(self, connectome, outputs, simDump=False, coreOveride=0):
                    load(connectome, outputs, simDump=simDump, coreOveride=coreOveride)
            elif fake.generation == "C":
                def __init__(self, connectome, outputs, config, simDump=False, coreOveride=0):
                    load(connectome, outputs, config, simDump=simDump, coreOveride=coreOveride)
            else:  # B, and PyPI hs_bridge 0.10.6
                def __init__(self, connectome, outputs, config, leak, perturbMag, simDump=False, coreOveride=0):
                    load(connectome, outputs, config, leak=leak, perturbMag=perturbMag, simDump=simDump,
                         coreOveride=coreOveride)

            def initalize_network(self):
                fake.calls.append(("initalize_network",))

            def run_step(self, inputs, membranePotential=False):
                fake.calls.append(("run_step", list(inputs)))
                core = fake.core
                a = np.zeros(core["w_axon"].shape[1], dtype=np.int64)
                a[list(inputs)] = 1
                noise = None if core["noise_off"] else core["rng"].integers(-2 ** 16, 2 ** 16, core["v"].size)
                core["v"], fired = step_potentials(core["v"], a, core["w_axon"], core["w_neuron"],
                                                   threshold=core["threshold"], leak=core["leak"], noise=noise,
                                                   bits=core["bits"], arithmetic=core["arithmetic"])
                return [(0, int(i)) for i in fired], CLOCK_CYCLES_PER_STEP, HBM_ACCESSES_PER_INPUT * len(inputs)

        return network

    def clear(self, n_internal, simDump=False, coreID=0):
        self.calls.append(("clear", n_internal, simDump, coreID))
        self.core["v"][:] = 0


def _simple_sim_class(generation: str):
    class simple_sim:
        formatDict = {"membrane_potential": "fxp-s35/0", "synapse_weights": "fxp-s16/0"}

        def __init__(self, *args, **kwargs):
            if generation == "D":
                self.axons, self.connections = args
                self.perturbMag = None
            else:
                self.threshold, self.axons, self.connections = args
                self.perturbMag = kwargs.get("perturbMag", 18)
                self.leak = kwargs.get("leak", 0)
            self.outputs = kwargs["outputs"]
            self.numNeurons = len(self.connections)
            self.gen_weights()
            self.initialize_sim_vars(self.numNeurons)
            self.rng = np.random.default_rng(0)

        def gen_weights(self):
            models = generation != "B"
            self.axonWeights = _dense(self.axons, len(self.axons), self.numNeurons, models)
            self.neuronWeights = _dense(self.connections, self.numNeurons, self.numNeurons, models)

        def initialize_sim_vars(self, numNeurons):
            self.membranePotentials = np.zeros(numNeurons, dtype=np.int64)

        def _models(self, attribute):
            return np.array([getattr(self.connections[i][1], attribute) for i in range(self.numNeurons)])

        def step_run(self, inputs):
            weights_axon = np.asarray(getattr(self.axonWeights, "get_val", lambda: self.axonWeights)(), np.int64)
            weights_neuron = np.asarray(getattr(self.neuronWeights, "get_val", lambda: self.neuronWeights)(),
                                        np.int64)
            a = np.zeros(weights_axon.shape[1], dtype=np.int64)
            a[list(inputs)] = 1
            noise = self.rng.integers(-2 ** 16, 2 ** 16, self.numNeurons)
            if generation == "B":
                threshold, leak, at_or_above = self.threshold, self.leak, False
                noisy = self.perturbMag is not None
            else:
                threshold, leak = self._models("threshold"), self._models("leak")
                at_or_above = generation == "C"
                noisy = generation == "C" and any(self._models("shift") != C_SIM_NOISE_OFF)
            self.membranePotentials, fired = step_potentials(
                self.membranePotentials, a, weights_axon, weights_neuron, threshold=threshold, leak=leak,
                at_or_above=at_or_above, noise=noise if noisy else None)
            return self.membranePotentials, [int(i) for i in fired if i in self.outputs]

    return simple_sim


def _cri_network_class(generation: str, simple_sim):
    models = generation != "B"

    class CRI_network:
        def _build(self, axons, connections, outputs, target, coreID, simDump, config=None, bridge=None,
                   **sim_options):
            self.target, self.outputs, self.simDump = target, outputs, simDump
            neuron.reset_count()
            self.connectome = connectome()
            for key in axons:
                self.connectome.addNeuron(neuron(key, "axon"))
            for key in connections:
                cell = neuron(key, "neuron", output=key in outputs)
                if models:
                    cell.neuronModel = connections[key][1]
                self.connectome.addNeuron(cell)
            for sources in (axons, connections):
                for key, value in sources.items():
                    for post, weight in (value[0] if models and sources is connections else value):
                        self.connectome.connectomeDict[key].addSynapse(self.connectome.connectomeDict[post], weight)
            index = {key: self.connectome.get_neuron_by_key(key).get_coreTypeIdx() for key in connections}

            def formatted(value, is_neuron):
                synapses = [(index[post], weight) for post, weight in (value[0] if models and is_neuron else value)]
                return (synapses, value[1]) if models and is_neuron else synapses

            self.axons = {i: formatted(axons[k], False) for i, k in enumerate(axons)}
            self.connections = {i: formatted(connections[k], True) for i, k in enumerate(connections)}
            outputs_idx = self.connectome.get_outputs_idx()
            if target == "CRI":
                from hs_bridge import network

                self.CRI = bridge(network, outputs_idx)
                self.CRI.initalize_network()
            elif target == "simpleSim":
                head = (self.axons, self.connections) if config is None else (
                    config["global_neuron_params"]["v_thr"], self.axons, self.connections)
                self.simpleSim = simple_sim(*head, outputs=outputs_idx, **sim_options)

        def step(self, inputs, target="simpleSim", membranePotential=False):
            formatted = [self.connectome.get_neuron_by_key(k).get_coreTypeIdx() for k in inputs]
            if self.target == "simpleSim":
                _, fired = self.simpleSim.step_run(formatted)
                return [self.connectome.get_neuron_by_idx(i).get_user_key() for i in fired]
            spikes, cycles, accesses = self.CRI.run_step(formatted)
            return [self.connectome.get_neuron_by_idx(s[1]).get_user_key() for s in spikes], cycles, accesses

    if generation == "B":
        class Generation(CRI_network):
            def __init__(self, axons, connections, config, outputs, target=None, simDump=False, coreID=0,
                         perturbMag=1, leak=0):
                self._build(axons, connections, outputs, target, coreID, simDump, config,
                            lambda network, fo: network(self.connectome, fo, config, simDump=simDump, leak=leak,
                                                        perturbMag=perturbMag, coreOveride=coreID),
                            perturbMag=perturbMag, leak=leak)
    elif generation == "C":
        class Generation(CRI_network):
            def __init__(self, axons, connections, config, outputs, target=None, simDump=False, coreID=0):
                self._build(axons, connections, outputs, target, coreID, simDump, config,
                            lambda network, fo: network(self.connectome, fo, config, simDump=simDump,
                                                        coreOveride=coreID))
    else:
        class Generation(CRI_network):
            def __init__(self, axons, connections, outputs, target=None, simDump=False, coreID=0):
                self._build(axons, connections, outputs, target, coreID, simDump, None,
                            lambda network, fo: network(self.connectome, fo, simDump=simDump, coreOveride=coreID))
    Generation.__name__ = Generation.__qualname__ = "CRI_network"
    return Generation


def install_hs_api(generation: str, monkeypatch) -> None:
    """Make ``import hs_api`` give a stand-in of ``generation`` ("B", "C" or "D") while the test runs."""
    package = types.ModuleType("hs_api")
    package.__path__ = []
    api, sim, models = (types.ModuleType(f"hs_api.{name}") for name in ("api", "_simple_sim", "neuron_models"))
    sim.simple_sim = _simple_sim_class(generation)
    api.CRI_network = _cri_network_class(generation, sim.simple_sim)
    if generation != "B":
        models.LIF_neuron = LIF_neuron
    package.api, package._simple_sim, package.neuron_models = api, sim, models
    for module in (package, api, sim, models):
        monkeypatch.setitem(sys.modules, module.__name__, module)
