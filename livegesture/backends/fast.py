"""CPU simulators with exactly CRI's semantics (see :mod:`livegesture.backends.network`).

Two engines, bit-exact with each other and with hs_api's ``simple_sim``:

* :class:`StructuredFastBackend` runs a :class:`LayeredNetwork` as integer
  convolutions (im2col + matrix product in torch; never Winograd or FFT, whose
  transforms are not exact).
* :class:`SparseFastBackend` runs any :class:`CriGraph` event by event: each step
  gathers the synapse rows of the axons driven and the neurons that fired
  (``scipy.sparse`` CSR) and adds them up.

Exactness: membrane potentials saturate to the signed 35-bit range like hs_api's ``fxp-s35``
numbers (``stats["saturations"]`` counts the clipped neurons). They are int64, or int32
while the bounds below keep them inside it (half the memory traffic of the fire and leak
updates): for the structured engine's layers, whose every potential lies between a fixed upper
bound and a floor that sinks by the layer's most negative input each step until a clear. A
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
INT32 = np.iinfo(np.int32)
SPLIT_BASE = 256


def channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The layout a layer's values are kept in: ``(C, H, W)`` -> ``(H, W, C)``; 1-D unchanged."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else shape


class _ExactLayer:
    """One layer's synaptic input ``spikes -> sum of weights``, exact for 0/1 spikes.

    Values are kept channels last (:func:`channels_last`): a convolution is im2col (a strided
    view of the padded ``(H, W, C)`` input, whose patches copy runs of ``C`` adjacent values)
    times the weight matrix, ``(OH * OW, kh * kw * C) @ (kh * kw * C, out)``, which lands in
    the ``(OH, OW, out)`` layout of the next layer's input: a plain matrix product, whose
    integer partial sums stay exact under the bound above. The same products as on ``(C, H,
    W)`` arrays, their weights reordered (1.2-1.3x as fast for the deployed net's second
    layer than im2col on ``(C, H, W)``, whose patches gather single values).
    """

    def __init__(self, layer: Layer, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        import torch

        out = layer.weight.shape[0]
        if isinstance(layer, ConvLayer):  # columns in patch order: (kh, kw, C)
            w = layer.weight.astype(np.int64).transpose(0, 2, 3, 1).reshape(out, -1)
        elif len(in_shape) == 3:  # columns in the order of the channels-last input
            w = layer.weight.astype(np.int64).reshape(out, *in_shape).transpose(0, 2, 3, 1).reshape(out, -1)
        else:
            w = layer.weight.astype(np.int64)
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
        self._matrix = torch.from_numpy(np.ascontiguousarray(np.concatenate(parts).T.astype(np.float64))).to(self._dtype)
        self._out = out
        self._out_shape = channels_last(out_shape)
        self._conv = isinstance(layer, ConvLayer)
        if self._conv:
            _, _, self._kh, self._kw = layer.weight.shape
            self._stride, self._padding = layer.stride, layer.padding
        self._torch = torch

    def __call__(self, spikes: np.ndarray, dtype: type[np.integer] = np.int64) -> np.ndarray:
        """``spikes`` (bool, the input's channels-last shape) -> synaptic input (the output's), as
        ``dtype`` (the caller's bounds say it holds the sums)."""
        torch = self._torch
        x = torch.from_numpy(spikes.astype(np.float32)).to(self._dtype)
        if self._conv:
            if self._padding:  # (H, W, C): pad W and H, not C
                x = torch.nn.functional.pad(x, (0, 0, *(self._padding,) * 4))
            height_stride, width_stride, channels = x.stride()[0], x.stride()[1], x.shape[2]
            oh, ow, _ = self._out_shape
            columns = x.as_strided((oh, ow, self._kh, self._kw, channels),
                                   (self._stride * height_stride, self._stride * width_stride, height_stride,
                                    width_stride, 1)).reshape(oh * ow, -1)
        else:
            columns = x.reshape(1, -1)
        product = (columns @ self._matrix).numpy()
        if self.mode == "split":
            product = product[:, :self._out].astype(np.int64) * SPLIT_BASE + product[:, self._out:].astype(np.int64)
        return product.astype(dtype).reshape(self._out_shape)


class StructuredFastBackend(Backend):
    """The layered network as integer matrix products: well under 1 ms per step for the deployed net
    (``benchmarks/bench_backends.py``)."""

    name = "fast"

    def __init__(self, network: LayeredNetwork, threads: int | None = None) -> None:
        import torch

        super().__init__(network)
        if threads:
            torch.set_num_threads(threads)
        shapes = network.layer_shapes
        self._layers = [_ExactLayer(layer, shape_in, shape) for layer, shape_in, shape
                        in zip(network.layers, (network.input_shape, *shapes), shapes)]
        # int32 while it holds every potential: below the fixed upper bound (V <= threshold before
        # integration) and above the floor, which sinks each step (widened to int64 below it)
        self._narrow = [network.threshold + layer.max_input <= INT32.max for layer in self._layers]
        self._v = [np.zeros(channels_last(shape), dtype=np.int32 if narrow else np.int64)
                   for shape, narrow in zip(shapes, self._narrow)]
        self._input = np.zeros(channels_last(network.input_shape), dtype=bool)
        self._input_slot = _channels_last_slots(network.input_shape)
        # Saturation can only happen once a potential may leave the 35-bit range (the same bounds).
        self._may_overflow = [network.threshold + layer.max_input > V_MAX for layer in self._layers]
        self._floor = [0] * len(shapes)
        self._stats.update(saturations=0, neuron_spikes=0)

    @property
    def potentials(self) -> list[np.ndarray]:
        """Each layer's membrane potentials in the network's layout (views of the state)."""
        return [_network_layout(v) for v in self._v]

    @property
    def precision(self) -> list[str]:
        """How each layer's product is computed: float32, split or float64."""
        return [layer.mode for layer in self._layers]

    def _reset(self) -> None:
        for k, (v, narrow) in enumerate(zip(self._v, self._narrow)):
            if narrow and v.dtype != np.int32:
                self._v[k] = np.zeros(v.shape, dtype=np.int32)
            else:
                v[:] = 0
        self._floor = [0] * len(self._v)

    @property
    def widths(self) -> list[int]:
        """Bits of each layer's potentials now: 32 while the bounds allow, else 64."""
        return [v.dtype.itemsize * 8 for v in self._v]

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
        self._input.reshape(-1)[self._input_slot[axons]] = True
        sources = [self._input] + fired[:-1]
        for k, (v, source, layer) in enumerate(zip(self._v, sources, self._layers)):
            if not source.any():                           # phase 2: integrate this step's spikes
                continue
            self._floor[k] += layer.min_input
            if self._floor[k] < INT32.min and v.dtype == np.int32:
                v = self._v[k] = v.astype(np.int64)
            v += layer(source, v.dtype)
            if self._may_overflow[k] or self._floor[k] < V_MIN:
                self._saturate(v)
        return _network_layout(fired[-1]).reshape(-1).astype(np.int64)

    def _saturate(self, v: np.ndarray) -> None:
        over = np.count_nonzero((v > V_MAX) | (v < V_MIN))
        if over:
            self._stats["saturations"] += int(over)
            np.clip(v, V_MIN, V_MAX, out=v)


def _channels_last_slots(shape: tuple[int, ...]) -> np.ndarray:
    """Where each value of a ``shape`` array (in C order) sits in its :func:`channels_last` array."""
    return _network_layout(np.arange(int(np.prod(shape))).reshape(channels_last(shape))).reshape(-1)


def _network_layout(values: np.ndarray) -> np.ndarray:
    """A channels-last array as a view in the network's layout: ``(H, W, C)`` -> ``(C, H, W)``."""
    return values.transpose(2, 0, 1) if values.ndim == 3 else values


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
