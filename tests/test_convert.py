"""The converter, proved against hs_api itself: keys as in the HiAER-Spike example, and the
converted net in hs_api's simpleSim spiking exactly like our simulators and the torch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from livegesture.backends import DRAIN_STEPS, make_backend, run_sample
from livegesture.backends.network import CriGraph
from livegesture.backends.testing import random_frames
from livegesture.model.config import NetConfig
from livegesture.model.net import SpikingNet, cri_step_outputs, integer_net, output_counts
from livegesture.model.quantize import choose_scale, export, integer_weights, prepare_qat, qat_scale


SMALL = NetConfig(channels=4, conv_layers=2, input_shape=(2, 15, 15), num_classes=5)


def lively_net(config: NetConfig, seed: int, gain: float = 2.0) -> SpikingNet:
    """A float net whose default init is scaled up so that spikes reach the outputs."""
    torch.manual_seed(seed)
    net = SpikingNet(config)
    with torch.no_grad():
        for module in net.weight_layers():
            module.weight.mul_(gain).add_(0.05 * gain)
    return net


def example_dicts(network) -> tuple[dict, dict, list]:
    """The HiAER-Spike DVS Gesture converter's construction (F.unfold patch indices), zero
    weights left out as ours leaves them out."""
    channels, size, _ = network.input_shape
    weights = [layer.weight.astype(int) for layer in network.layers]
    axons = {f"A{i}": [] for i in range(channels * size * size)}
    connections: dict = {}
    conv = [layer for layer in network.layers[:-1]]
    patch_rows = F.unfold(torch.arange(channels * size * size, dtype=torch.float64).reshape(1, channels, size, size),
                          kernel_size=conv[0].weight.shape[2], stride=conv[0].stride)[0].T.long()
    for out, kernel in enumerate(weights[0]):
        for j, row in enumerate(patch_rows):
            connections[f"C1.{out}.{j}"] = []
            for i, axon in enumerate(row.tolist()):
                if kernel.flatten()[i]:
                    axons[f"A{axon}"].append((f"C1.{out}.{j}", kernel.flatten()[i]))
    res = network.layer_shapes[0][1]
    for k in range(1, len(conv)):
        rows = F.unfold(torch.arange(res * res, dtype=torch.float64).reshape(1, 1, res, res),
                        kernel_size=conv[k].weight.shape[2], stride=conv[k].stride)[0].T.long()
        for out, per_input in enumerate(weights[k]):
            for c, kernel in enumerate(per_input):
                for j, row in enumerate(rows):
                    connections.setdefault(f"C{k + 1}.{out}.{j}", [])
                    for i, src in enumerate(row.tolist()):
                        if kernel.flatten()[i]:
                            connections[f"C{k}.{c}.{src}"].append((f"C{k + 1}.{out}.{j}", kernel.flatten()[i]))
        res = network.layer_shapes[k][1]
    fc = weights[-1]
    for col in range(fc.shape[1]):
        source = f"C{len(conv)}.{col // (res * res)}.{col % (res * res)}"
        connections[source] += [(i, w) for i, w in enumerate(fc[:, col]) if w]
    outputs = list(range(fc.shape[0]))
    connections.update({x: [] for x in outputs})
    return axons, connections, outputs


def as_sets(table: dict) -> dict:
    return {key: set((t, int(w)) for t, w in synapses) for key, synapses in table.items()}


def test_keys_and_synapses_are_those_of_the_hiaer_example():
    net = lively_net(SMALL, seed=0)
    network = export(net, choose_scale(net))
    axons, connections, outputs = network.graph.to_hs_api()
    ex_axons, ex_connections, ex_outputs = example_dicts(network)
    assert outputs == ex_outputs == [0, 1, 2, 3, 4]
    assert list(axons) == list(ex_axons)  # A0 .. A449: input index c*H*W + y*W + x
    assert as_sets(axons) == as_sets(ex_axons)
    assert set(connections) == set(ex_connections)
    assert as_sets(connections) == as_sets(ex_connections)
    back = CriGraph.from_hs_api(axons, connections, outputs, network.threshold)
    assert (back.axon_weights != network.graph.axon_weights).nnz == 0
    assert (back.neuron_weights != network.graph.neuron_weights).nnz == 0


@pytest.mark.parametrize("seed, gain", [(0, 1.0), (1, 2.0), (2, 3.0)])
def test_converted_net_spikes_identically_in_simplesim_our_simulators_and_torch(seed, gain):
    net = lively_net(SMALL, seed, gain)
    scale = choose_scale(net)
    prepare_qat(net, scale)  # the quantization-aware net, float32: the integers CRI computes
    network = export(net, scale)
    assert network.threshold == scale == qat_scale(net)
    frames = random_frames(np.random.default_rng(seed), SMALL.input_shape, 10, 0.3)
    simplesim = make_backend("simplesim", network)
    simplesim.reset()
    expected = np.array([simplesim.step(f) for f in frames] + [simplesim.step(None) for _ in range(DRAIN_STEPS)])
    assert expected.sum() > 0
    for name in ("fast", "fast-sparse"):
        backend = make_backend(name, network)
        backend.reset()
        steps = [backend.step(f) for f in frames] + [backend.step(None) for _ in range(DRAIN_STEPS)]
        assert np.array_equal(np.array(steps), expected), name
    as_tensor = torch.from_numpy(frames)
    assert np.array_equal(cri_step_outputs(integer_net(network), as_tensor.double(), DRAIN_STEPS), expected)
    assert np.array_equal(cri_step_outputs(net, as_tensor.float(), DRAIN_STEPS), expected)
    with torch.no_grad():
        counts = output_counts(net, as_tensor.float().unsqueeze(1), DRAIN_STEPS)[0]
    assert counts.tolist() == run_sample(make_backend("fast", network), frames).tolist()


def test_scale_keeps_int16_and_float32_exact_sums():
    net = lively_net(NetConfig(channels=100, conv_layers=3), seed=3, gain=1.0)
    scale = choose_scale(net)
    weights = [integer_weights(m, scale).astype(np.int64) for m in net.weight_layers()]
    assert max(np.abs(w).max() for w in weights) <= 32767
    sums = [np.maximum(np.clip(w, 0, None).reshape(len(w), -1).sum(1), -np.clip(w, None, 0).reshape(len(w), -1).sum(1))
            for w in weights]
    assert max(s.max() for s in sums) < 2 ** 24
    assert make_backend("fast", export(net, scale)).precision == ["float32"] * 4


def test_reference_architecture_size():
    net = SpikingNet(NetConfig())
    assert sum(p.numel() for p in net.parameters()) == 235_700
    network = export(net, choose_scale(net))
    assert (network.num_axons, network.num_neurons, network.num_outputs, network.depth) == (7938, 123_511, 11, 4)
    assert [shape[1] for shape in network.layer_shapes[:3]] == [31, 15, 7]
