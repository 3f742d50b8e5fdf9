"""Backends: the fast CPU simulators against hs_api's own simulator, step by step."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from livegesture.backends import DRAIN_STEPS, NetworkError, make_backend, run_sample
from livegesture.backends.fast import SPLIT_BASE, SparseFastBackend, StructuredFastBackend
from livegesture.backends.network import (
    INPUT_SHAPE,
    V_MAX,
    V_MIN,
    ConvLayer,
    CriGraph,
    LayeredNetwork,
    LinearLayer,
)
from livegesture.backends.testing import random_frames, random_network


def step_outputs(backend, frames, drain_steps=DRAIN_STEPS) -> np.ndarray:
    backend.reset()
    return np.array([backend.step(f) for f in frames] + [backend.step(None) for _ in range(drain_steps)])


CASES = [  # seed, padding, leak, threshold
    (0, 0, 31, 100), (1, 1, 31, 60), (2, 0, 0, 30), (3, 1, 1, 80), (4, 0, 3, 120), (5, 1, 31, 0),
]


@pytest.mark.parametrize("seed, padding, leak, threshold", CASES)
def test_fast_engines_match_simplesim_step_by_step(seed, padding, leak, threshold):
    rng = np.random.default_rng(seed)
    network = random_network(rng, padding=padding, leak=leak, threshold=threshold)
    frames = random_frames(rng, network.input_shape, 10, 0.3)
    reference = step_outputs(make_backend("simplesim", network), frames)
    assert reference.sum() > 0, "the test net must spike"
    for name in ("fast", "fast-sparse"):
        assert np.array_equal(step_outputs(make_backend(name, network), frames), reference), name


def test_simplesim_shortcut_equals_cri_network_step():
    """The backend calls simple_sim.step_run directly; CRI_network.step must give the same spikes."""
    rng = np.random.default_rng(7)
    network = random_network(rng)
    frames = random_frames(rng, network.input_shape, 10, 0.3)
    backend = make_backend("simplesim", network)
    expected = step_outputs(backend, frames)
    backend.reset()
    graph = network.graph
    got = []
    for frame in list(frames) + [None] * DRAIN_STEPS:
        ids = [] if frame is None else np.flatnonzero(frame)
        fired = backend.cri_network.step([graph.axon_keys[i] for i in ids])
        got.append(np.bincount(np.array(fired, dtype=np.int64), minlength=network.num_outputs))
    assert np.array_equal(np.array(got), expected)


def test_sparse_engine_runs_any_graph_like_simplesim():
    """Recurrent and self connections, several outputs anywhere: not a layered net."""
    rng = np.random.default_rng(11)
    n_axons, n_neurons = 12, 30
    axon_w = sp.random(n_axons, n_neurons, density=0.4, random_state=1, data_rvs=lambda n: rng.integers(-20, 60, n))
    neuron_w = sp.random(n_neurons, n_neurons, density=0.2, random_state=2, data_rvs=lambda n: rng.integers(-40, 50, n))
    graph = CriGraph(tuple(f"in{i}" for i in range(n_axons)), tuple(f"n{i}" for i in range(n_neurons)),
                     axon_w.tocsr().astype(np.int16), neuron_w.tocsr().astype(np.int16), np.array([3, 17, 29, 0]),
                     threshold=50, leak=2)
    inputs = [rng.choice(n_axons, size=rng.integers(0, n_axons), replace=False) for _ in range(25)]
    reference = step_outputs(make_backend("simplesim", graph), inputs, 0)
    assert reference.sum() > 0
    assert np.array_equal(step_outputs(make_backend("fast-sparse", graph), inputs, 0), reference)


def test_potentials_saturate_to_35_bits_like_simplesim():
    n_axons = 10_000
    graph = CriGraph(tuple(f"A{i}" for i in range(n_axons)), ("low", "high"),
                     sp.csr_matrix(np.tile(np.array([[-32768, 32767]], np.int16), (n_axons, 1))),
                     sp.csr_matrix((2, 2), dtype=np.int16), np.array([0, 1]), threshold=V_MAX)
    steps = 60  # 10,000 * 32768 per step reaches 2**34 after 53 steps
    fast, sim = make_backend("fast-sparse", graph), make_backend("simplesim", graph)
    for backend in (fast, sim):
        backend.reset()
        for _ in range(steps):
            assert backend.step(np.arange(n_axons)).sum() == 0  # V = V_MAX never exceeds V_MAX
    assert np.array_equal(fast._v, [V_MIN, V_MAX])
    assert np.array_equal(np.asarray(sim.cri_network.simpleSim.membranePotentials(), dtype=np.int64), [V_MIN, V_MAX])
    assert fast.stats["saturations"] > 0


def test_structured_engine_saturates_like_sparse():
    layer = LinearLayer(np.full((2, 10_000), -32768))
    network = LayeredNetwork((layer,), threshold=5, input_shape=(1, 100, 100))
    structured, sparse = make_backend("fast", network), make_backend("fast-sparse", network)
    ones = np.ones(network.input_shape, np.uint8)
    assert structured.widths == [32]  # 5 + 0 at most: int32 holds it until the floor sinks below
    for backend in (structured, sparse):
        run_sample(backend, [ones] * 60, 0)
    assert structured.potentials[0].tolist() == [V_MIN, V_MIN] == sparse._v.tolist()
    assert structured.stats["saturations"] == sparse.stats["saturations"] > 0
    assert structured.widths == [64]
    for steps in (6, 7, 8):  # from 7 steps on below int32's range: widened on the way
        for backend in (structured, sparse):
            run_sample(backend, [ones] * steps, 0)
        assert structured.potentials[0].tolist() == sparse._v.tolist()
        assert structured.widths == [32 if steps < 7 else 64]
    assert sparse._v.min() < np.iinfo(np.int32).min
    structured.reset()
    assert structured.widths == [32]


def test_large_sums_are_split_or_widened_and_stay_exact():
    rng = np.random.default_rng(3)
    big = ConvLayer(rng.integers(30_000, 32_767, (4, 700, 3, 3)), 2, 0)  # sum |w| > 2**24 per neuron
    network = LayeredNetwork((big, LinearLayer(rng.integers(-5, 5, (3, 4 * 9)))), threshold=2**30,
                             input_shape=(700, 7, 7))
    engine = make_backend("fast", network)
    assert engine.precision[0] == "split" and engine.precision[1] == "float32"
    frames = random_frames(rng, network.input_shape, 3, 0.9)
    engine.reset()
    engine.step(frames[0])
    sparse = make_backend("fast-sparse", network)
    sparse.reset()
    sparse.step(frames[0])
    engine.step(frames[1])
    sparse.step(frames[1])
    assert np.array_equal(engine.potentials[0].reshape(-1), sparse._v[:4 * 9])
    assert engine.potentials[0].max() > 2 ** 24 * 2  # beyond float32's exact range: the split did its work
    assert SPLIT_BASE == 256


def test_deployed_architecture_structured_equals_sparse():
    rng = np.random.default_rng(5)
    network = random_network(rng, channels=100, conv_layers=3, input_shape=INPUT_SHAPE, num_classes=11,
                             threshold=150, weights=(-25, 30))
    assert network.num_neurons == 123_511 and 22_000_000 < network.num_synapses <= 26_443_700
    frames = random_frames(rng, INPUT_SHAPE, 10, 0.1)
    structured = make_backend("fast", network)
    assert isinstance(structured, StructuredFastBackend)
    expected = step_outputs(structured, frames)
    assert expected.sum() > 0
    assert np.array_equal(step_outputs(SparseFastBackend(network), frames), expected)


def test_channels_last_state_is_the_networks_layer_by_layer():
    """The structured engine keeps values channels last; seen in the network's layout, every
    layer's potentials and a convolution's output spikes are the event-driven engine's (a
    non-square padded input, a convolution last)."""
    rng = np.random.default_rng(8)
    first = ConvLayer(rng.integers(-40, 80, (5, 3, 3, 3)), 2, 1)
    last = ConvLayer(rng.integers(-40, 80, (4, 5, 3, 3)), 1, 1)
    network = LayeredNetwork((first, last), threshold=60, leak=2, input_shape=(3, 9, 13))
    structured, sparse = make_backend("fast", network), make_backend("fast-sparse", network)
    structured.reset()
    sparse.reset()
    spiked = 0
    for frame in random_frames(rng, network.input_shape, 6, 0.4):
        outputs = structured.step(frame)
        assert np.array_equal(outputs, sparse.step(frame))
        spiked += outputs.sum()
        potentials = np.concatenate([v.reshape(-1) for v in structured.potentials])
        assert np.array_equal(potentials, sparse._v)
    assert spiked > 0 and [v.shape for v in structured.potentials] == [(5, 5, 7), (4, 5, 7)]


@pytest.mark.parametrize("count", [0, 1, 3, 9])
def test_run_samples_is_run_sample_of_each_and_counts_alike(count):
    """Samples stepped together (the structured engine, in several batches for 9) or one by one
    (the default): each one's counts are run_sample's, every counter grows as much, and the single
    instance's state is left as it was."""
    rng = np.random.default_rng(11)
    network = random_network(rng, padding=1, input_shape=(2, 15, 21), threshold=60)
    samples = random_frames(rng, (7, *network.input_shape), count, 0.3)
    samples[:, 2] = 0  # an empty frame in every sample
    first = random_frames(rng, network.input_shape, 1, 0.3)[0]
    for name in ("fast", "fast-sparse"):
        one, together = make_backend(name, network), make_backend(name, network)
        expected = np.array([run_sample(one, frames, 4) for frames in samples], dtype=np.int64).reshape(count, 5)
        assert count == 0 or expected.sum() > 0
        together.reset()
        together.step(first)
        state = [v.copy() for v in getattr(together, "potentials", [])]
        before = together.stats
        counts = together.run_samples(samples, 4)
        assert counts.shape == (count, network.num_outputs) and np.array_equal(counts, expected), name
        assert all(np.array_equal(a, b) for a, b in zip(state, getattr(together, "potentials", [])))
        assert {key: value - before[key] for key, value in together.stats.items()} == one.stats, name
        assert np.array_equal(together.step(None), _second(network, first)), name  # the stream goes on
    with pytest.raises(NetworkError, match="samples must be"):
        make_backend("fast", network).run_samples(np.zeros((2, 7, 2, 15, 15)))


def _second(network, first):
    """The output spikes of a fresh fast engine's second step (``first``, then nothing)."""
    backend = make_backend("fast", network)
    backend.reset()
    backend.step(first)
    return backend.step(None)


def test_step_accepts_frames_axon_lists_and_nothing():
    rng = np.random.default_rng(9)
    network = random_network(rng)
    frames = random_frames(rng, network.input_shape, 10, 0.3)
    by_frame = step_outputs(make_backend("fast", network), frames)
    as_lists = [list(np.flatnonzero(f)) for f in frames]
    assert np.array_equal(step_outputs(make_backend("fast", network), as_lists), by_frame)
    with make_backend("fast-sparse", network) as backend:
        assert np.array_equal(run_sample(backend, frames), by_frame.sum(0))
        assert backend.stats["steps"] == 16 and backend.stats["resets"] == 1
        assert backend.step([]).shape == (network.num_outputs,)


@pytest.mark.parametrize("bad", [np.zeros((2, 5, 5)), [1.5, 2.0], [-1], [10**6]])
def test_step_rejects_inputs_that_do_not_fit(bad):
    network = random_network(np.random.default_rng(0))
    with pytest.raises(NetworkError):
        make_backend("fast", network).step(bad)


def test_simplesim_refuses_the_deployed_net():
    network = random_network(np.random.default_rng(0), channels=100, conv_layers=3, input_shape=INPUT_SHAPE,
                             num_classes=11)
    with pytest.raises(NetworkError, match="use the fast backend"):
        make_backend("simplesim", network)


def test_fast_on_a_graph_network_points_to_fast_sparse():
    graph = random_network(np.random.default_rng(0)).graph  # an axons/connections graph, as a pickle loads
    with pytest.raises(NetworkError, match="choose --backend fast-sparse"):
        make_backend("fast", graph)


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("gpu", random_network(np.random.default_rng(0)))


def test_vectorized_weight_matrices_equal_hs_api_gen_weights():
    from hs_api._simple_sim import simple_sim

    network = random_network(np.random.default_rng(8), channels=2)
    ours = make_backend("simplesim", network).cri_network
    original = simple_sim(network.threshold, ours.axons, ours.connections, outputs=ours.connectome.get_outputs_idx(),
                          perturbMag=None, leak=network.leak)
    for name in ("neuronWeights", "axonWeights"):
        a, b = getattr(ours.simpleSim, name), getattr(original, name)
        assert np.array_equal(a(), b()) and a.dtype == b.dtype and a.config.overflow == b.config.overflow


def test_default_backend_without_hardware_is_fast():
    from livegesture.backends import default_backend_name

    assert default_backend_name() == "fast"


BUILD_CHILD = """
import importlib, json, sys
import numpy as np
from livegesture.backends import BUILD_IMPORTS, make_backend
from livegesture.backends.testing import random_network
from livegesture.pipeline.engine import BACKEND_OPTIONS

name = sys.argv[1]
network = random_network(np.random.default_rng(0))
for module in BUILD_IMPORTS[name]:
    importlib.import_module(module)
before = set(sys.modules)
make_backend(name, network, **BACKEND_OPTIONS.get(name, {}))
print(json.dumps({"new": sorted(set(sys.modules) - before), "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("name", ["fast", "fast-sparse", "simplesim"])
def test_build_imports_name_every_module_a_backend_imports_and_torch_only_for_fast(name):
    """What a worker pool's fork server preloads for a backend: building it imports nothing more."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    if name == "simplesim":
        pytest.importorskip("hs_api")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", BUILD_CHILD, name], capture_output=True, text=True, check=True,
                         env=env).stdout
    built = json.loads(out)
    assert built == {"new": [], "torch": name == "fast"}
