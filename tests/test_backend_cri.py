"""The cri backend up to the FPGA boundary.

hs_api runs for real (connectome, key translation, ``CRI_network.step``); only hs_bridge,
the FPGA side, is replaced: its ``network`` class (which would compile the connectome into
HBM and drive the DMA engine) and ``fpga_controller.clear``. The stand-in records every
call and answers with the spikes hs_api's own simulator computes, so the counts can be
checked against the fast backend too.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hs_api_generations import install_bridge

from livegesture.backends import DRAIN_STEPS, make_backend, run_sample
from livegesture.backends.testing import random_frames, random_network


CLOCK_CYCLES_PER_STEP = 1000
HBM_ACCESSES_PER_INPUT = 3


class FakeFpga:
    """hs_bridge's hardware calls, recorded; simulated with hs_api's simple_sim."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.sim = None

    def network_class(self):
        fpga = self

        class network:  # the name hs_api imports: ``from hs_bridge import network``
            def __init__(self, connectome, outputs, config, simDump=False, leak=0, shift=None, coreOveride=0):
                from hs_api._simple_sim import simple_sim

                fpga.calls.append(("network", config["global_neuron_params"]["v_thr"], leak, shift, coreOveride,
                                   simDump))
                axons = {a.get_coreTypeIdx(): [(s.get_postsynapticNeuron().get_coreTypeIdx(), s.get_weight())
                                               for s in a.get_synapses()] for a in connectome.get_axons().values()}
                neurons = {n.get_coreTypeIdx(): [(s.get_postsynapticNeuron().get_coreTypeIdx(), s.get_weight())
                                                 for s in n.get_synapses()] for n in connectome.get_neurons().values()}
                fpga.sim = simple_sim(config["global_neuron_params"]["v_thr"], axons, neurons, outputs=outputs,
                                      perturbMag=shift, leak=leak)

            def initalize_network(self):
                fpga.calls.append(("initalize_network",))

            def run_step(self, inputs, membranePotential=False):
                fpga.calls.append(("run_step", list(inputs), membranePotential))
                _, fired = fpga.sim.step_run(inputs)
                return [(0, idx) for idx in fired], CLOCK_CYCLES_PER_STEP, HBM_ACCESSES_PER_INPUT * len(inputs)

        return network

    def clear(self, n_internal, simDump=False, coreID=0):
        self.calls.append(("clear", n_internal, simDump, coreID))
        self.sim.initialize_sim_vars(self.sim.numNeurons)


@pytest.fixture
def fpga(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEGESTURE_CRI_LOCK", str(tmp_path / "cri.lock"))
    fake = FakeFpga()
    install_bridge(monkeypatch, fake.network_class(), fake.clear)
    return fake


def test_exact_hardware_calls_and_counts(fpga):
    rng = np.random.default_rng(2)
    network = random_network(rng, leak=7)
    samples = [random_frames(rng, network.input_shape, 10, 0.3) for _ in range(2)]
    backend = make_backend("cri", network, core_id=0)
    assert fpga.calls == [("network", network.threshold, 7, None, 0, False), ("initalize_network",)]
    fpga.calls.clear()

    counts = [run_sample(backend, frames) for frames in samples]

    axon_index = {key: backend.cri_network.connectome.get_neuron_by_key(key).get_coreTypeIdx()
                  for key in network.graph.axon_keys}
    expected = []
    for frames in samples:
        expected.append(("clear", network.num_neurons, False, 0))
        for frame in frames:
            expected.append(("run_step", [axon_index[f"A{i}"] for i in np.flatnonzero(frame)], False))
        expected += [("run_step", [], False)] * DRAIN_STEPS
    assert fpga.calls == expected
    fast = make_backend("fast", network)
    assert [c.tolist() for c in counts] == [run_sample(fast, frames).tolist() for frames in samples]
    assert sum(c.sum() for c in counts) > 0
    stats = backend.stats
    assert stats["clears"] == 2 and stats["steps"] == 2 * (10 + DRAIN_STEPS)
    assert stats["clock_cycles"] == CLOCK_CYCLES_PER_STEP * stats["steps"]
    assert stats["hbm_accesses"] == HBM_ACCESSES_PER_INPUT * sum(int(f.sum()) for s in samples for f in s)
    backend.close()


def test_step_by_step_equals_fast_and_reset_clears(fpga):
    rng = np.random.default_rng(4)
    network = random_network(rng, padding=1)
    frames = random_frames(rng, network.input_shape, 10, 0.3)
    cri, fast = make_backend("cri", network), make_backend("fast", network)
    for backend in (cri, fast):
        backend.reset()
    for frame in list(frames) + [None] * DRAIN_STEPS:
        assert np.array_equal(cri.step(frame), fast.step(frame))
    assert [c[0] for c in fpga.calls].count("clear") == 1
    cri.close()


def test_without_hs_bridge_the_error_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "hs_bridge", None)
    with pytest.raises(RuntimeError, match="needs a CRI host"):
        make_backend("cri", random_network(np.random.default_rng(0)))


def test_mismatched_hs_bridge_is_reported(fpga, monkeypatch):
    def old_signature(connectome, outputs, config, leak, perturbMag, simDump=False, coreOveride=0):
        raise AssertionError("not reached")

    monkeypatch.setattr(sys.modules["hs_bridge"], "network", old_signature)
    with pytest.raises(RuntimeError, match=r"generation A .* calls hs_bridge.network\(.*shift=.* takes network"):
        make_backend("cri", random_network(np.random.default_rng(0)))
