"""Every hs_api generation (A-D) in the simplesim and cri backends, hardware detection, the
one-process lock and the hardware limits.

Generations B-D are the stand-ins of ``hs_api_generations`` (their constructors, hs_bridge
calls and simulator semantics as in hs_api's public repository); the FPGA is
:class:`~hs_api_generations.FakeBridge`, which steps the network as the RTL does, so a wrong
threshold, noise shift or potential mode shows up as different spikes from the fast backend.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hs_api_generations import FakeBridge, install_hs_api

from livegesture.backends import DRAIN_STEPS, make_backend, run_sample
from livegesture.backends.cri import (
    DEVICE_GLOB,
    HARDWARE_ENV,
    HardwareLimitError,
    check_hardware_limits,
    hardware_available,
)
from livegesture.backends.hsapi import HsApiError, detect_generation, installed_cri_network
from livegesture.backends.network import CriGraph
from livegesture.backends.testing import random_frames, random_network

GENERATIONS = ("B", "C", "D")


def lively_network(seed: int, leak: int = 7):
    """Small weights and a small threshold: potentials hit the threshold exactly, go negative
    and leak, so ``>`` against ``>=``, the leak shift and the noise all change spikes."""
    return random_network(np.random.default_rng(seed), weights=(-6, 9), threshold=10, leak=leak)


@pytest.fixture(autouse=True)
def lock_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEGESTURE_CRI_LOCK", str(tmp_path / "cri.lock"))
    return tmp_path / "cri.lock"


def test_installed_hs_api_is_generation_a_and_each_stand_in_is_detected(monkeypatch):
    assert detect_generation(installed_cri_network()).name == "A"
    for generation in GENERATIONS:
        install_hs_api(generation, monkeypatch)
        assert detect_generation(installed_cri_network()).name == generation


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("leak", [7, 31])
def test_simplesim_of_every_generation_spikes_as_fast(monkeypatch, generation, leak):
    install_hs_api(generation, monkeypatch)
    network = lively_network(1, leak)
    sim, fast = make_backend("simplesim", network), make_backend("fast", network)
    assert sim.generation.name == generation
    rng = np.random.default_rng(2)
    total = 0
    for frames in (random_frames(rng, network.input_shape, 10, 0.3) for _ in range(3)):
        for backend in (sim, fast):
            backend.reset()
        for frame in list(frames) + [None] * DRAIN_STEPS:
            expected = fast.step(frame)
            assert np.array_equal(sim.step(frame), expected)
            total += int(expected.sum())
    assert total > 0


@pytest.mark.parametrize("generation", GENERATIONS)
def test_cri_backend_of_every_generation_programs_the_fast_backends_neuron(monkeypatch, generation):
    install_hs_api(generation, monkeypatch)
    fpga = FakeBridge(generation)
    fpga.install(monkeypatch)
    network = lively_network(3)
    backend = make_backend("cri", network, core_id=0)
    load = fpga.calls[0]
    if generation == "B":  # global I&F from config; no noise; the leak passed on
        assert load == ("network", network.threshold, {"leak": 7, "perturbMag": None, "simDump": False,
                                                       "coreOveride": 0})
    else:  # one LIF model: threshold as is, noise off (-17), the leak, 35-bit mode
        assert load == ("network", [(network.threshold, -17, 7, 1)], {"simDump": False, "coreOveride": 0})
    assert fpga.calls[1] == ("initalize_network",)
    rng = np.random.default_rng(4)
    samples = [random_frames(rng, network.input_shape, 10, 0.3) for _ in range(3)]
    fast = make_backend("fast", network)
    counts = [run_sample(backend, frames) for frames in samples]
    if generation != "B":  # B's hs_bridge programs a non-leaky neuron: the known difference
        assert [c.tolist() for c in counts] == [run_sample(fast, frames).tolist() for frames in samples]
    assert sum(int(c.sum()) for c in counts) > 0
    assert [c for c in fpga.calls if c[0] == "clear"] == [("clear", network.num_neurons, False, 0)] * 3
    assert backend.stats["clock_cycles"] == 1000 * 3 * (10 + DRAIN_STEPS)
    backend.close()


def test_a_mismatched_pair_is_named_before_anything_is_loaded(monkeypatch):
    install_hs_api("D", monkeypatch)
    fpga = FakeBridge("B")  # hs_bridge 0.10.6's network(connectome, outputs, config, leak, perturbMag, ...)
    fpga.install(monkeypatch)
    with pytest.raises(HsApiError, match=r"generation D \(dev @f094b2d\).*takes network\(connectome, outputs, "
                                         r"config, leak, perturbMag"):
        make_backend("cri", lively_network(0))
    assert fpga.calls == []


def test_a_failure_inside_a_matching_pair_is_not_called_a_mismatch(monkeypatch):
    install_hs_api("C", monkeypatch)
    fpga = FakeBridge("C")
    fpga.install(monkeypatch)

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand inside hs_bridge")

    with monkeypatch.context() as patch, pytest.raises(TypeError, match="inside hs_bridge"):
        patch.setattr(sys.modules["hs_bridge"].network, "initalize_network", broken)
        make_backend("cri", lively_network(0))
    make_backend("cri", lively_network(0)).close()  # the failed backend gave the lock back


def test_staggered_mode_puts_each_instance_on_its_own_core(monkeypatch):
    from livegesture.pipeline.engine import PredictionEngine
    from livegesture.pipeline.settings import PipelineSettings

    install_hs_api("D", monkeypatch)
    fpga = FakeBridge("D")
    fpga.install(monkeypatch)
    with PredictionEngine(lively_network(0), PipelineSettings(backend="cri", mode="staggered")):
        cores = [call[2]["coreOveride"] for call in fpga.calls if call[0] == "network"]
    assert cores == [0, 1]


def test_hardware_is_detected_from_the_driver_devices_not_magic_txt(monkeypatch, tmp_path):
    monkeypatch.delenv(HARDWARE_ENV, raising=False)
    monkeypatch.setattr(installed_cri_network(), "checkHw", lambda self=None: True)  # a shipped magic.txt
    monkeypatch.setattr("livegesture.backends.cri.DEVICE_GLOB", str(tmp_path / "adxdma*"))
    assert not hardware_available()
    (tmp_path / "adxdma0_h2c_0").touch()
    assert hardware_available()
    monkeypatch.setenv(HARDWARE_ENV, "0")
    assert not hardware_available()
    (tmp_path / "adxdma0_h2c_0").unlink()
    monkeypatch.setenv(HARDWARE_ENV, "1")
    assert hardware_available()
    assert DEVICE_GLOB == "/dev/adxdma*"


def test_a_second_process_on_the_hardware_is_refused_with_its_pid(monkeypatch, lock_file):
    install_hs_api("D", monkeypatch)
    FakeBridge("D").install(monkeypatch)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"f = open({str(lock_file)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
        "f.write(str(os.getpid())); f.flush(); print('locked', flush=True); time.sleep(30)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(HsApiError, match=rf"in use by process {holder.pid} .*only one process"):
            make_backend("cri", lively_network(0))
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # the lock is free once the holder is gone
        try:
            make_backend("cri", lively_network(0)).close()
            break
        except HsApiError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _graph(n_axons: int, n_neurons: int, fan_out: int = 1) -> CriGraph:
    axon_weights = sp.csr_matrix((np.ones(fan_out, np.int16), (np.zeros(fan_out, int), np.arange(fan_out))),
                                 shape=(n_axons, n_neurons))
    return CriGraph(tuple(f"A{i}" for i in range(n_axons)), tuple(range(n_neurons)), axon_weights,
                    sp.csr_matrix((n_neurons, n_neurons), dtype=np.int16), np.arange(1), threshold=1)


def test_hardware_limits_are_named():
    check_hardware_limits(_graph(8_192, 131_072, fan_out=511 * 8))  # exactly at every limit
    with pytest.raises(HardwareLimitError, match="131,073 neurons exceed the 131,072 neurons of a CRI core"):
        check_hardware_limits(_graph(10, 131_073))
    with pytest.raises(HardwareLimitError, match="8,193 axons exceed the 8,192 axons"):
        check_hardware_limits(_graph(8_193, 10))
    with pytest.raises(HardwareLimitError, match=r"axon 'A0' has 4,089 synapses: more than 511 synapse rows"):
        check_hardware_limits(_graph(10, 5_000, fan_out=511 * 8 + 1))


def test_the_cri_backend_refuses_a_net_beyond_the_limits(monkeypatch):
    install_hs_api("D", monkeypatch)
    fpga = FakeBridge("D")
    fpga.install(monkeypatch)
    with pytest.raises(HardwareLimitError, match="8,193 axons"):
        make_backend("cri", _graph(8_193, 10))
    assert fpga.calls == []


def test_convert_refuses_to_write_an_hs_api_pickle_beyond_the_limits(tmp_path):
    from livegesture.model.convert import write
    from livegesture.model.files import CriModel, ModelFileError, ModelInfo

    path = tmp_path / "too_big.pkl"
    with pytest.raises(ModelFileError, match=rf"{path}: not written, .*131,073 neurons exceed"):
        write(CriModel(_graph(10, 131_073), ModelInfo()), path)
    assert not path.exists()
