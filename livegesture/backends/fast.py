"""CPU simulators with exactly CRI's semantics (see :mod:`livegesture.backends.network`).

Two engines, bit-exact with each other and with hs_api's ``simple_sim``:

* :class:`StructuredFastBackend` runs a :class:`LayeredNetwork` as integer
  convolutions (im2col + matrix product in torch; never Winograd or FFT, whose
  transforms are not exact).
* :class:`SparseFastBackend` runs any :class:`CriGraph` event by event: each step
  gathers the synapse rows of the axons driven and the neurons that fired
  (``scipy.sparse`` CSR) and adds them up.

Exactness: membrane potentials are int64 and saturate to the signed 35-bit range like
hs_api's ``fxp-s35`` numbers (``stats["saturations"]`` counts the clipped neurons). A
float32 product of 0/1 spikes with integer weights is exact while every partial sum stays
below 2**24; a partial sum is a sum of some of a neuron's weights, so per layer the bound
is the largest sum of one neuron's positive (or of its negative) weights. A layer whose
bound reaches 2**24 is split, ``w = 256*hi + lo`` with ``hi`` in [-128, 127] and
``lo`` in [0, 255], each part exact in float32 (fan-in < 65,793), else computed in float64.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from livegesture.backends.base import Backend
from livegesture.backends.network import V_MAX, V_MIN, ConvLayer, CriGraph, Layer, LayeredNetwork, Network

FLOAT32_EXACT = 2 ** 24
"""Integers below this magnitude, and their sums below it, are exact in float32."""
SPLIT_BASE = 256


class _ExactLayer:
    """One layer's synaptic input ``spikes -> sum of weights``, exact for 0/1 spikes.

    A convolution is im2col (a strided view of the padded input) times the weight matrix:
    a plain matrix product, whose integer partial sums stay exact under the bound above.
    """

    def __init__(self, layer: Layer, out_shape: tuple[int, ...]) -> None:
        import torch

        w = layer.weight.astype(np.int64).reshape(layer.weight.shape[0], -1)
        fan_in = w.shape[1]
        self.max_input = int(np.clip(w, 0, None).sum(axis=1).max())
        self.min_input = int(np.clip(w, None, 0).sum(axis=1).min())
        if max(self.max_input, -self.min_input) < FLOAT32_EXACT:
            self.mode, parts = "float32", [w]
        elif fan_in * (SPLIT_BASE - 1) < FLOAT32_EXACT:
            self.mode, parts = "split", [w // SPLIT_BASE, w % SPLIT_BASE]
        else:
            self.mode, parts = "float64", [w]
        self._dtype = torch.float64 if self.mode == "float64" else torch.float32
        self._matrix = torch.from_numpy(np.concatenate(parts).astype(np.float64)).to(self._dtype)
        self._out = w.shape[0]
        self._out_shape = out_shape
        if isinstance(layer, ConvLayer):
            _, _, self._kh, self._kw = layer.weight.shape
            self._stride, self._padding = layer.stride, layer.padding
        self._conv = isinstance(layer, ConvLayer)
        self._torch = torch

    def __call__(self, spikes: np.ndarray) -> np.ndarray:
        """``spikes`` (bool, the input shape) -> int64 synaptic input (the output shape)."""
        torch = self._torch
        x = torch.from_numpy(spikes.astype(np.float32)).to(self._dtype)
        if self._conv:
            if self._padding:
                x = torch.nn.functional.pad(x, (self._padding,) * 4)
            patches = x.unfold(1, self._kh, self._stride).unfold(2, self._kw, self._stride)  # C, OH, OW, kh, kw
            columns = patches.permute(0, 3, 4, 1, 2).reshape(-1, self._out_shape[1] * self._out_shape[2])
        else:
            columns = x.reshape(-1, 1)
        product = (self._matrix @ columns).numpy().astype(np.int64)
        if self.mode == "split":
            product = product[:self._out] * SPLIT_BASE + product[self._out:]
        return product.reshape(self._out_shape)


class StructuredFastBackend(Backend):
    """The layered network as integer matrix products: about 1 ms per step for the deployed net."""

    name = "fast"

    def __init__(self, network: LayeredNetwork, threads: int | None = None) -> None:
        import torch

        super().__init__(network)
        if threads:
            torch.set_num_threads(threads)
        shapes = network.layer_shapes
        self._layers = [_ExactLayer(layer, shape) for layer, shape in zip(network.layers, shapes)]
        self._v = [np.zeros(shape, dtype=np.int64) for shape in shapes]
        self._input = np.zeros(network.num_axons, dtype=bool)
        # Saturation can only happen once a potential may leave the 35-bit range: the upper
        # bound is fixed (V <= threshold before integration), the lower one sinks each step.
        self._may_overflow = [network.threshold + layer.max_input > V_MAX for layer in self._layers]
        self._floor = [0] * len(shapes)
        self._stats.update(saturations=0, neuron_spikes=0)

    @property
    def precision(self) -> list[str]:
        """How each layer's product is computed: float32, split or float64."""
        return [layer.mode for layer in self._layers]

    def _reset(self) -> None:
        for v in self._v:
            v[:] = 0
        self._floor = [0] * len(self._v)

    def _step(self, axons: np.ndarray) -> np.ndarray:
        threshold, leak = self.network.threshold, self.network.leak
        fired = []
        for v in self._v:                                  # phase 1: fire, reset, leak
            spikes = v > threshold
            v *= ~spikes
            v -= v >> leak
            fired.append(spikes)
            self._stats["neuron_spikes"] += int(np.count_nonzero(spikes))
        self._input[:] = False
        self._input[axons] = True
        sources = [self._input.reshape(self.network.input_shape)] + fired[:-1]
        for k, (v, source, layer) in enumerate(zip(self._v, sources, self._layers)):
            if not source.any():                           # phase 2: integrate this step's spikes
                continue
            v += layer(source)
            self._floor[k] += layer.min_input
            if self._may_overflow[k] or self._floor[k] < V_MIN:
                self._saturate(v)
        return fired[-1].reshape(-1).astype(np.int64)

    def _saturate(self, v: np.ndarray) -> None:
        over = np.count_nonzero((v > V_MAX) | (v < V_MIN))
        if over:
            self._stats["saturations"] += int(over)
            np.clip(v, V_MIN, V_MAX, out=v)


class SparseFastBackend(Backend):
    """Any CRI graph, event-driven: cost per step follows the synapses of the active inputs."""

    name = "fast-sparse"

    def __init__(self, network: Network) -> None:
        super().__init__(network)
        graph: CriGraph = network.graph
        matrix = sp.vstack([graph.axon_weights, graph.neuron_weights], format="csr")
        self._indptr = matrix.indptr.astype(np.int64)
        self._indices = matrix.indices
        self._weights = matrix.data.astype(np.float64)  # bincount sums in float64: exact below 2**53
        self._num_axons = graph.num_axons
        self._outputs = graph.outputs
        self._v = np.zeros(graph.num_neurons, dtype=np.int64)
        wide = matrix.astype(np.int64)
        self._min_input = int(np.asarray(wide.minimum(0).sum(axis=0)).min(initial=0))
        self._may_overflow = graph.threshold + int(np.asarray(wide.maximum(0).sum(axis=0)).max(initial=0)) > V_MAX
        self._floor = 0
        self._stats.update(saturations=0, neuron_spikes=0, synaptic_events=0)

    def _reset(self) -> None:
        self._v[:] = 0
        self._floor = 0

    def _step(self, axons: np.ndarray) -> np.ndarray:
        v = self._v
        fired = v > self.network.threshold                 # phase 1: fire, reset, leak
        v[fired] = 0
        v -= v >> self.network.leak
        neurons = np.flatnonzero(fired)
        active = np.concatenate([axons, neurons + self._num_axons])
        if active.size:                                    # phase 2: integrate
            starts = self._indptr[active]
            lengths = self._indptr[active + 1] - starts
            total = int(lengths.sum())
            if total:
                run_start = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
                synapses = run_start + np.arange(total)
                v += np.bincount(self._indices[synapses], weights=self._weights[synapses],
                                 minlength=v.size).astype(np.int64)
                self._floor += self._min_input
                if self._may_overflow or self._floor < V_MIN:
                    over = np.count_nonzero((v > V_MAX) | (v < V_MIN))
                    if over:
                        self._stats["saturations"] += int(over)
                        np.clip(v, V_MIN, V_MAX, out=v)
            self._stats["synaptic_events"] += total
        self._stats["neuron_spikes"] += int(neurons.size)
        return fired[self._outputs].astype(np.int64)
