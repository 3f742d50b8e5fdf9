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

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from livegesture.backends.base import DRAIN_STEPS, Backend
from livegesture.backends.network import (
    V_MAX,
    V_MIN,
    ConvLayer,
    CriGraph,
    Layer,
    LayeredNetwork,
    Network,
    NetworkError,
)

FLOAT32_EXACT = 2 ** 24
"""Integers below this magnitude, and their sums below it, are exact in float32."""
INT32 = np.iinfo(np.int32)
SPLIT_BASE = 256
INSTANCES_PER_BATCH = 4
"""Samples :meth:`StructuredFastBackend.run_samples` steps together: fewer share less of a step's
per-call costs, more (8 for the deployed net) outgrow the caches and are slower again."""


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
        """``spikes`` (bool, ``(instances, *channels-last input shape)``) -> synaptic input (the
        output's), as ``dtype`` (the caller's bounds say it holds the sums)."""
        torch = self._torch
        x = torch.from_numpy(spikes.astype(np.float32)).to(self._dtype)
        instances = x.shape[0]
        if self._conv:
            if self._padding:  # (N, H, W, C): pad W and H, not C
                x = torch.nn.functional.pad(x, (0, 0, *(self._padding,) * 4))
            instance_stride, height_stride, width_stride, _ = x.stride()
            oh, ow, _ = self._out_shape
            columns = x.as_strided((instances, oh, ow, self._kh, self._kw, x.shape[3]),
                                   (instance_stride, self._stride * height_stride, self._stride * width_stride,
                                    height_stride, width_stride, 1)).reshape(instances * oh * ow, -1)
        else:
            columns = x.reshape(instances, -1)
        product = (columns @ self._matrix).numpy()
        if self.mode == "split":
            product = product[:, :self._out].astype(np.int64) * SPLIT_BASE + product[:, self._out:].astype(np.int64)
        return product.astype(dtype).reshape(instances, *self._out_shape)


class StructuredFastBackend(Backend):
    """The layered network as integer matrix products: well under 1 ms per step for the deployed net
    (``benchmarks/bench_backends.py``). :meth:`run_samples` steps many samples at once."""

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
        # Saturation can only happen once a potential may leave the 35-bit range (the same bounds).
        self._may_overflow = [network.threshold + layer.max_input > V_MAX for layer in self._layers]
        self._state = self._cleared(1)
        self._input = np.zeros((1, *channels_last(network.input_shape)), dtype=bool)
        self._input_slot = _channels_last_slots(network.input_shape)
        self._stats.update(saturations=0, neuron_spikes=0)

    @property
    def potentials(self) -> list[np.ndarray]:
        """Each layer's membrane potentials in the network's layout (views of the state)."""
        return [_network_layout(v)[0] for v in self._state.potentials]

    @property
    def precision(self) -> list[str]:
        """How each layer's product is computed: float32, split or float64."""
        return [layer.mode for layer in self._layers]

    @property
    def widths(self) -> list[int]:
        """Bits of each layer's potentials now: 32 while the bounds allow, else 64."""
        return [v.dtype.itemsize * 8 for v in self._state.potentials]

    def run_samples(self, samples: np.ndarray, drain_steps: int = DRAIN_STEPS) -> np.ndarray:
        """The reference deployment of every sample of ``samples`` ``(B, T, *input_shape)``, as
        :func:`~livegesture.backends.run_sample` runs each (and counted alike in ``stats``), but
        :data:`INSTANCES_PER_BATCH` at a time, stepped together: that many instances of the network
        in one batch of matrix products, which share the per-call costs of a step
        (``benchmarks/bench_backends.py``). The single instance's state is left as it was."""
        samples = np.asarray(samples)
        if samples.ndim != 5 or samples.shape[2:] != tuple(self.network.input_shape):
            raise NetworkError(f"samples must be (B, T, *{tuple(self.network.input_shape)}), got {samples.shape}")
        counts = [self._run_batch(samples[lo:lo + INSTANCES_PER_BATCH], drain_steps)
                  for lo in range(0, len(samples), INSTANCES_PER_BATCH)]
        return np.concatenate(counts) if counts else np.zeros((0, self.num_outputs), dtype=np.int64)

    def _run_batch(self, samples: np.ndarray, drain_steps: int) -> np.ndarray:
        instances, frames = samples.shape[:2]
        state = self._cleared(instances)
        active = samples.transpose(0, 1, 3, 4, 2) != 0  # channels last, as the state
        counts = np.zeros((instances, self.num_outputs), dtype=np.int64)
        for t in range(frames + drain_steps):
            fired = self._advance(state, np.ascontiguousarray(active[:, t]) if t < frames else None)
            counts += _network_layout(fired).reshape(instances, -1)
        self._stats["steps"] += instances * (frames + drain_steps)
        self._stats["resets"] += instances
        self._stats["output_spikes"] += int(counts.sum())
        return counts

    def _cleared(self, instances: int) -> _State:
        return _State([np.zeros((instances, *channels_last(shape)), dtype=np.int32 if narrow else np.int64)
                       for shape, narrow in zip(self.network.layer_shapes, self._narrow)])

    def _reset(self) -> None:
        if any((v.dtype == np.int32) != narrow for v, narrow in zip(self._state.potentials, self._narrow)):
            self._state = self._cleared(1)  # a layer was widened
            return
        for v in self._state.potentials:
            v[:] = 0
        self._state.floor = [0] * len(self._state.floor)

    def _step(self, axons: np.ndarray) -> np.ndarray:
        self._input[:] = False
        self._input.reshape(-1)[self._input_slot[axons]] = True
        return _network_layout(self._advance(self._state, self._input)).reshape(-1).astype(np.int64)

    def _advance(self, state: _State, source: np.ndarray | None) -> np.ndarray:
        """One step of every instance of ``state`` with input spikes ``source`` (channels last,
        None: none); the last layer's spikes."""
        threshold, leak = self.network.threshold, self.network.leak
        fired = []
        for v in state.potentials:                         # phase 1: fire, reset, leak
            spikes = v > threshold
            v *= ~spikes
            v -= v >> leak
            fired.append(spikes)
            self._stats["neuron_spikes"] += int(np.count_nonzero(spikes))
        sources = [source] + fired[:-1]
        for k, (v, spikes, layer) in enumerate(zip(state.potentials, sources, self._layers)):
            if spikes is None or not spikes.any():        # phase 2: integrate this step's spikes
                continue
            state.floor[k] += layer.min_input
            if state.floor[k] < INT32.min and v.dtype == np.int32:
                v = state.potentials[k] = v.astype(np.int64)
            v += layer(spikes, v.dtype)
            if self._may_overflow[k] or state.floor[k] < V_MIN:
                self._saturate(v)
        return fired[-1]

    def _saturate(self, v: np.ndarray) -> None:
        over = np.count_nonzero((v > V_MAX) | (v < V_MIN))
        if over:
            self._stats["saturations"] += int(over)
            np.clip(v, V_MIN, V_MAX, out=v)


@dataclass
class _State:
    """The membrane potentials of some instances of a layered network, layer by layer
    ``(instances, *channels-last shape)``, and each layer's floor since the clear."""

    potentials: list[np.ndarray]
    floor: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.floor = [0] * len(self.potentials)


def _channels_last_slots(shape: tuple[int, ...]) -> np.ndarray:
    """Where each value of a ``shape`` array (in C order) sits in its :func:`channels_last` array."""
    return _network_layout(np.arange(int(np.prod(shape))).reshape(1, *channels_last(shape))).reshape(-1)


def _network_layout(values: np.ndarray) -> np.ndarray:
    """Instances' channels-last values as a view in the network's layout: ``(N, H, W, C)`` ->
    ``(N, C, H, W)``; ``(N, features)`` unchanged."""
    return values.transpose(0, 3, 1, 2) if values.ndim == 4 else values


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
