"""The CRI network representation every backend runs.

A CRI network is a set of *axons* (inputs, driven from outside each step), *neurons*
(integrate-and-fire, one global threshold) and signed 16-bit synapses from axons and
neurons to neurons. Two forms describe one:

* :class:`LayeredNetwork`: the known feed-forward architecture (convolutions and linear
  layers with integer weights). The fast backend runs it as integer convolutions.
* :class:`CriGraph`: any axons/connections network as two sparse matrices, e.g. one
  loaded from the HiAER-Spike ``DVS_model_config.pkl``. Every layered network has a
  graph form (:meth:`LayeredNetwork.to_graph`).

Neuron semantics (hs_api 0.1.7 ``simple_sim``; the CRI RTL's phases), one step:

1. every neuron with ``V > threshold`` (strictly) fires and is reset to 0;
2. leak: ``V -= V >> leak`` (arithmetic shift, i.e. floor division by ``2**leak``);
3. ``V += sum of the weights from the axons driven this step and the neurons that fired
   in phase 1``, saturated to the signed 35-bit range (hs_api keeps V in an ``fxp-s35``
   number, whose overflow mode is saturation).

A spike therefore crosses one layer per step: an L-layer network answers L steps after
its input, hence the drain steps after the last frame.

Key scheme (hs_api dictionaries), as in the HiAER-Spike DVS Gesture example: axon
``"A{i}"`` for input index ``i = c*H*W + y*W + x`` of the ``(2, 63, 63)`` frame (channel 0
OFF, channel 1 ON); convolution layer ``k`` (1-based) neurons ``"C{k}.{channel}.{j}"``
with ``j = row*width + col`` of its output map; hidden linear layer ``m`` neurons
``"FC{m}.{i}"``; the output neurons are the integers ``0 .. classes-1`` in class order.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from livegesture.events import LivegestureError
from livegesture.integrate import INPUT_SHAPE

WEIGHT_BITS = 16
WEIGHT_MIN, WEIGHT_MAX = -(2 ** (WEIGHT_BITS - 1)), 2 ** (WEIGHT_BITS - 1) - 1
"""Synapse weights are signed 16-bit integers."""

POTENTIAL_BITS = 35
V_MIN, V_MAX = -(2 ** (POTENTIAL_BITS - 1)), 2 ** (POTENTIAL_BITS - 1) - 1
"""Membrane potentials are signed 35-bit integers; updates saturate at these bounds."""

IF_LEAK = 31
"""Leak shift of an integrate-and-fire neuron: the largest shift of hs_api's signed 6-bit
``shift`` format. ``V >> 31`` is 0 for ``0 <= V < 2**31``; a negative ``V`` rises by 1 per
step, exactly as in hs_api's simulator."""

MAX_LEAK = 62
"""Largest leak the simulators accept (``V >> 63`` overflows in hs_api's int64 arithmetic)."""

AXON_PREFIX = "A"

Key = Hashable
"""A user key of an axon or neuron in hs_api dictionaries (``str`` or ``int``)."""


class NetworkError(LivegestureError, ValueError):
    """A network that violates CRI's rules (weights, threshold, shapes, keys)."""


def check_neuron_parameters(threshold: int, leak: int) -> None:
    """Raise :class:`NetworkError` unless ``threshold`` and ``leak`` are valid CRI values."""
    if not isinstance(threshold, (int, np.integer)) or not 0 <= threshold <= V_MAX:
        raise NetworkError(f"threshold must be an integer in [0, {V_MAX}], got {threshold!r}")
    if not isinstance(leak, (int, np.integer)) or not 0 <= leak <= MAX_LEAK:
        raise NetworkError(f"leak must be an integer in [0, {MAX_LEAK}], got {leak!r}")


def check_weights(weights: np.ndarray, what: str) -> np.ndarray:
    """``weights`` as int16, or :class:`NetworkError` if any lies outside the signed 16-bit range."""
    weights = np.asarray(weights)
    if weights.size and not np.issubdtype(weights.dtype, np.integer):
        rounded = np.rint(weights)
        if not np.array_equal(rounded, weights):
            raise NetworkError(f"{what}: weights must be integers")
        weights = rounded
    if weights.size and (weights.min() < WEIGHT_MIN or weights.max() > WEIGHT_MAX):
        raise NetworkError(f"{what}: weights must lie in [{WEIGHT_MIN}, {WEIGHT_MAX}], "
                           f"found [{weights.min()}, {weights.max()}]")
    return weights.astype(np.int16)


@dataclass(frozen=True, eq=False)
class ConvLayer:
    """A bias-free 2-D convolution: ``weight`` is ``(out, in, kh, kw)`` int16."""

    weight: np.ndarray
    stride: int
    padding: int

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        out, channels, kh, kw = self.weight.shape
        if len(input_shape) != 3 or input_shape[0] != channels:
            raise NetworkError(f"convolution expects {channels} input channels, got input {input_shape}")
        _, height, width = input_shape
        oh = (height + 2 * self.padding - kh) // self.stride + 1
        ow = (width + 2 * self.padding - kw) // self.stride + 1
        if oh < 1 or ow < 1:
            raise NetworkError(f"convolution {tuple(self.weight.shape)} does not fit input {input_shape}")
        return out, oh, ow


@dataclass(frozen=True, eq=False)
class LinearLayer:
    """A bias-free fully connected layer on the flattened ``(C, H, W)`` input: ``(out, in)`` int16."""

    weight: np.ndarray

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int]:
        if int(np.prod(input_shape)) != self.weight.shape[1]:
            raise NetworkError(f"linear layer expects {self.weight.shape[1]} inputs, got input {input_shape}")
        return (self.weight.shape[0],)


Layer = ConvLayer | LinearLayer


@dataclass(frozen=True, eq=False)
class LayeredNetwork:
    """A feed-forward spiking network of integer layers; the last layer's neurons are the outputs."""

    layers: tuple[Layer, ...]
    threshold: int
    leak: int = IF_LEAK
    input_shape: tuple[int, int, int] = INPUT_SHAPE

    def __post_init__(self) -> None:
        check_neuron_parameters(self.threshold, self.leak)
        if not self.layers:
            raise NetworkError("a network needs at least one layer")
        checked = []
        for k, layer in enumerate(self.layers, start=1):
            weight = check_weights(layer.weight, f"layer {k}")
            if isinstance(layer, ConvLayer):
                if weight.ndim != 4 or layer.stride < 1 or layer.padding < 0:
                    raise NetworkError(f"layer {k}: a convolution needs 4-D weights, stride >= 1 and padding >= 0, "
                                       f"got {weight.shape}, {layer.stride}, {layer.padding}")
                checked.append(ConvLayer(weight, int(layer.stride), int(layer.padding)))
            else:
                if weight.ndim != 2:
                    raise NetworkError(f"layer {k}: linear weights must be 2-D, got {weight.shape}")
                checked.append(LinearLayer(weight))
        object.__setattr__(self, "layers", tuple(checked))
        object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))
        _ = self.layer_shapes  # fail now if the layers do not chain

    @cached_property
    def layer_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Output shape of each layer."""
        shapes, shape = [], self.input_shape
        for k, layer in enumerate(self.layers, start=1):
            try:
                shape = layer.output_shape(shape)
            except NetworkError as err:
                raise NetworkError(f"layer {k}: {err}") from None
            shapes.append(shape)
        return tuple(shapes)

    @property
    def depth(self) -> int:
        """Number of weight layers: output spikes follow an input by this many steps."""
        return len(self.layers)

    @property
    def num_axons(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def num_neurons(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.layer_shapes)

    @property
    def num_outputs(self) -> int:
        return int(np.prod(self.layer_shapes[-1]))

    @property
    def num_synapses(self) -> int:
        """Non-zero synapses (zero weights are left out of the graph)."""
        return int(self.graph.axon_weights.nnz + self.graph.neuron_weights.nnz)

    def neuron_keys(self) -> list[Key]:
        """hs_api keys of all neurons, layer by layer (see the module's key scheme)."""
        keys: list[Key] = []
        conv = fc = 0
        for k, (layer, shape) in enumerate(zip(self.layers, self.layer_shapes), start=1):
            if k == len(self.layers):
                keys.extend(range(int(np.prod(shape))))
            elif isinstance(layer, ConvLayer):
                conv += 1
                plane = shape[1] * shape[2]
                keys.extend(f"C{conv}.{c}.{j}" for c in range(shape[0]) for j in range(plane))
            else:
                fc += 1
                keys.extend(f"FC{fc}.{i}" for i in range(shape[0]))
        return keys

    @cached_property
    def graph(self) -> CriGraph:
        """The same network as axons/neurons/synapse matrices (built once, cached)."""
        return self.to_graph()

    def to_graph(self) -> CriGraph:
        sources: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        in_offset, out_offset = -self.num_axons, 0  # presynaptic index: axons first, then neurons
        shape = self.input_shape
        for layer, out_shape in zip(self.layers, self.layer_shapes):
            if isinstance(layer, ConvLayer):
                pre, post, w = _conv_synapses(layer, shape, out_shape)
            else:
                pre, post, w = _linear_synapses(layer)
            sources.append(pre + in_offset)
            targets.append(post + out_offset)
            weights.append(w)
            in_offset = out_offset
            out_offset += int(np.prod(out_shape))
            shape = out_shape
        pre = np.concatenate(sources) + self.num_axons
        post = np.concatenate(targets)
        w = np.concatenate(weights)
        n_axons, n_neurons = self.num_axons, self.num_neurons
        matrix = sp.csr_matrix((w, (pre, post)), shape=(n_axons + n_neurons, n_neurons), dtype=np.int16)
        return CriGraph(
            axon_keys=tuple(f"{AXON_PREFIX}{i}" for i in range(n_axons)),
            neuron_keys=tuple(self.neuron_keys()),
            axon_weights=matrix[:n_axons],
            neuron_weights=matrix[n_axons:],
            outputs=np.arange(n_neurons - self.num_outputs, n_neurons),
            threshold=self.threshold,
            leak=self.leak,
            input_shape=self.input_shape,
            depth=self.depth,
        )


def _conv_synapses(layer: ConvLayer, in_shape: tuple[int, ...],
                   out_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(presynaptic flat index, postsynaptic flat index, weight) of every non-zero synapse."""
    channels, height, width = in_shape
    out, oh, ow = out_shape
    _, _, kh, kw = layer.weight.shape
    pre_all, post_all, w_all = [], [], []
    for ky in range(kh):
        rows = np.arange(oh) * layer.stride - layer.padding + ky
        row_ok = (rows >= 0) & (rows < height)
        for kx in range(kw):
            cols = np.arange(ow) * layer.stride - layer.padding + kx
            col_ok = (cols >= 0) & (cols < width)
            oy, ox = np.nonzero(row_ok[:, None] & col_ok[None, :])
            pixel_in = rows[oy] * width + cols[ox]             # (P,)
            pixel_out = oy * ow + ox                           # (P,)
            w = layer.weight[:, :, ky, kx]                     # (out, in)
            o, c = np.nonzero(w)
            pre = (c[:, None] * (height * width) + pixel_in[None, :]).ravel()
            post = (o[:, None] * (oh * ow) + pixel_out[None, :]).ravel()
            pre_all.append(pre)
            post_all.append(post)
            w_all.append(np.repeat(w[o, c], pixel_in.size))
    return np.concatenate(pre_all), np.concatenate(post_all), np.concatenate(w_all)


def _linear_synapses(layer: LinearLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    post, pre = np.nonzero(layer.weight)
    return pre, post, layer.weight[post, pre]


@dataclass(frozen=True, eq=False)
class CriGraph:
    """Any CRI network: synapse matrices indexed ``[presynaptic, postsynaptic]``.

    ``axon_weights`` is ``(axons, neurons)``, ``neuron_weights`` ``(neurons, neurons)``,
    both CSR int16. ``outputs`` lists the output neurons' indices in class order. When
    ``input_shape`` is set, axon ``i`` is input ``i`` of a frame of that shape (C order).
    ``depth`` is the longest axon-to-output path in layers, when known.
    """

    axon_keys: tuple[Key, ...]
    neuron_keys: tuple[Key, ...]
    axon_weights: sp.csr_matrix
    neuron_weights: sp.csr_matrix
    outputs: np.ndarray
    threshold: int
    leak: int = IF_LEAK
    input_shape: tuple[int, int, int] | None = None
    depth: int | None = None

    def __post_init__(self) -> None:
        check_neuron_parameters(self.threshold, self.leak)
        n_axons, n_neurons = len(self.axon_keys), len(self.neuron_keys)
        if self.axon_weights.shape != (n_axons, n_neurons) or self.neuron_weights.shape != (n_neurons, n_neurons):
            raise NetworkError(f"synapse matrices {self.axon_weights.shape}, {self.neuron_weights.shape} do not "
                               f"match {n_axons} axons and {n_neurons} neurons")
        outputs = np.asarray(self.outputs, dtype=np.int64)
        if outputs.ndim != 1 or outputs.size == 0 or outputs.min() < 0 or outputs.max() >= n_neurons:
            raise NetworkError("outputs must be a non-empty list of neuron indices")
        object.__setattr__(self, "outputs", outputs)
        if self.input_shape is not None and int(np.prod(self.input_shape)) != n_axons:
            raise NetworkError(f"input shape {self.input_shape} does not match {n_axons} axons")

    @property
    def num_axons(self) -> int:
        return len(self.axon_keys)

    @property
    def num_neurons(self) -> int:
        return len(self.neuron_keys)

    @property
    def num_outputs(self) -> int:
        return int(self.outputs.size)

    @property
    def num_synapses(self) -> int:
        return int(self.axon_weights.nnz + self.neuron_weights.nnz)

    @property
    def graph(self) -> CriGraph:
        return self

    @classmethod
    def from_hs_api(cls, axons: dict, connections: dict, outputs: Sequence[Key], threshold: int,
                    leak: int = IF_LEAK) -> CriGraph:
        """Build from hs_api dictionaries ``{key: [(post_key, weight), ...]}``.

        ``connections`` values may also be ``(synapses, neuron_model)`` pairs (newer hs_api);
        the model is ignored here (see :mod:`livegesture.model.files`). Axon keys
        ``A0 .. A{n-1}`` are put in numeric order and, for ``n = 2*63*63``, mapped to frame
        pixels. Raises :class:`NetworkError` for unknown keys, synapse lists that are not lists,
        duplicate synapses or outputs, or weights outside int16.
        """
        axon_keys = list(axons)
        neuron_keys = list(connections)
        if set(axon_keys) & set(neuron_keys):
            raise NetworkError("axon and neuron keys must be distinct")
        canonical = _canonical_axon_order(axon_keys)
        if canonical is not None:
            axon_keys = canonical
        neuron_index = {key: i for i, key in enumerate(neuron_keys)}

        def matrix(sources: list, synapse_lists: list, what: str) -> sp.csr_matrix:
            for key, synapses in zip(sources, synapse_lists):
                if not isinstance(synapses, (list, tuple)):
                    raise NetworkError(f"{what} {key!r}: expected a list of (neuron_key, weight) synapses, "
                                       f"got {type(synapses).__name__}")
            counts = [len(s) for s in synapse_lists]
            total = sum(counts)
            pre = np.repeat(np.arange(len(sources)), counts)
            post = np.empty(total, dtype=np.int64)
            w = np.empty(total, dtype=np.int64)
            i = 0
            for key, synapses in zip(sources, synapse_lists):
                for synapse in synapses:
                    if not isinstance(synapse, (tuple, list)) or len(synapse) != 2:
                        raise NetworkError(f"{what} {key!r}: a synapse must be (neuron_key, weight), got {synapse!r}")
                    target, weight = synapse
                    try:
                        post[i] = neuron_index[target]
                    except (KeyError, TypeError):
                        raise NetworkError(f"{what} {key!r}: synapse to unknown neuron {target!r}") from None
                    if isinstance(weight, bool) or not isinstance(weight, (int, np.integer)):
                        if not (isinstance(weight, (float, np.floating)) and float(weight).is_integer()):
                            raise NetworkError(f"{what} {key!r}: weight {weight!r} is not an integer")
                    w[i] = int(weight)
                    i += 1
            checked = check_weights(w, what + "s")
            m = sp.coo_matrix((checked, (pre, post)), shape=(len(sources), len(neuron_keys)))
            csr = m.tocsr()
            if csr.nnz != total:  # tocsr() sums duplicates
                raise NetworkError(f"{what}s: {total - csr.nnz} duplicate synapses (same pre- and postsynaptic "
                                   f"key); hs_api's simulator would keep one, the hardware both")
            csr.eliminate_zeros()
            return csr.astype(np.int16)

        axon_matrix = matrix(axon_keys, [axons[k] for k in axon_keys], "axon")
        neuron_matrix = matrix(neuron_keys, [synapse_list(connections[k]) for k in neuron_keys], "neuron")
        try:
            output_index = np.array([neuron_index[key] for key in outputs], dtype=np.int64)
        except (KeyError, TypeError) as err:
            raise NetworkError(f"output {err} is not a neuron key") from None
        repeated = sorted({repr(key) for key in outputs if list(outputs).count(key) > 1})
        if repeated:
            raise NetworkError(f"outputs list neuron {', '.join(repeated)} more than once: one neuron per class")
        input_shape = INPUT_SHAPE if canonical is not None and len(axon_keys) == np.prod(INPUT_SHAPE) else None
        return cls(tuple(axon_keys), tuple(neuron_keys), axon_matrix, neuron_matrix, output_index,
                   int(threshold), int(leak), input_shape)

    def to_hs_api(self, neuron_model: object | None = None) -> tuple[dict, dict, list]:
        """``(axons, connections, outputs)`` dictionaries for hs_api's ``CRI_network``.

        With ``neuron_model``, each connections value is ``(synapses, neuron_model)`` as newer
        hs_api versions take; otherwise the synapse list itself (hs_api 0.1.7).
        """
        def lists(matrix: sp.csr_matrix) -> list[list[tuple[Key, int]]]:
            keys, indptr = self.neuron_keys, matrix.indptr
            targets, weights = matrix.indices.tolist(), matrix.data.tolist()
            return [[(keys[targets[p]], weights[p]) for p in range(indptr[i], indptr[i + 1])]
                    for i in range(matrix.shape[0])]

        axons = dict(zip(self.axon_keys, lists(self.axon_weights)))
        synapses = lists(self.neuron_weights)
        if neuron_model is None:
            connections = dict(zip(self.neuron_keys, synapses))
        else:
            connections = {key: (s, neuron_model) for key, s in zip(self.neuron_keys, synapses)}
        return axons, connections, [self.neuron_keys[i] for i in self.outputs]


def synapse_list(value: object) -> list:
    """The synapse list of a connections value: a list, or a ``(list, neuron_model)`` pair
    (hs_api generations C and D)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list):
        return value[0]
    if isinstance(value, list):
        return value
    raise NetworkError(f"a connections entry must be a synapse list, got {type(value).__name__}")


def _canonical_axon_order(keys: list[Key]) -> list[Key] | None:
    """``A0 .. A{n-1}`` in numeric order when ``keys`` are exactly those, else None."""
    expected = {f"{AXON_PREFIX}{i}" for i in range(len(keys))}
    if set(keys) != expected:
        return None
    return [f"{AXON_PREFIX}{i}" for i in range(len(keys))]


Network = LayeredNetwork | CriGraph
"""What a backend runs."""
