"""The one small interface every backend implements, and the reference deployment loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar, Union

import numpy as np

from livegesture.backends.network import Network, NetworkError

DRAIN_STEPS = 6
"""Empty steps after the last frame, as the HiAER-Spike DVS Gesture example runs."""
MAX_DRAIN_STEPS = 100
"""Most drain steps a setting or a model file may ask for. A spike crosses one layer per step, so
a net of L weight layers needs L drain steps: 100 is 25 times what the shipped net (4 weight
layers) needs."""

StepInput = Union[np.ndarray, Sequence[int], None]
"""A ``(2, 63, 63)`` frame (non-zero = active), a sequence of axon indices, or None/empty (no input)."""


class Backend(ABC):
    """Runs one CRI network step by step.

    ``step`` returns the output spikes of this step (0/1 per output neuron, int64, class
    order); ``reset`` clears every membrane potential; ``stats`` counts what the backend
    knows (always ``steps``, ``resets``, ``output_spikes``).
    """

    name: ClassVar[str]

    def __init__(self, network: Network) -> None:
        self.network = network
        self._stats: dict[str, int] = {"steps": 0, "resets": 0, "output_spikes": 0}

    @property
    def num_outputs(self) -> int:
        return self.network.num_outputs

    @property
    def stats(self) -> dict[str, int]:
        """A copy of the counters."""
        return dict(self._stats)

    def reset(self) -> None:
        """Clear all membrane potentials (a new sample starts)."""
        self._reset()
        self._stats["resets"] += 1

    def step(self, inputs: StepInput = None) -> np.ndarray:
        """Advance one timestep with ``inputs``; the output spikes of this step."""
        spikes = self._step(axon_indices(self.network, inputs))
        self._stats["steps"] += 1
        self._stats["output_spikes"] += int(spikes.sum())
        return spikes

    def run_samples(self, samples: np.ndarray, drain_steps: int = DRAIN_STEPS) -> np.ndarray:
        """:func:`run_sample` of each sample of ``samples`` ``(B, T, ...)``: ``(B, outputs)``
        counts (a backend that can step several instances at once does it so)."""
        return np.array([run_sample(self, frames, drain_steps) for frames in samples],
                        dtype=np.int64).reshape(len(samples), self.num_outputs)

    def close(self) -> None:
        """Release what the backend holds; safe to call more than once."""

    @abstractmethod
    def _reset(self) -> None: ...

    @abstractmethod
    def _step(self, axons: np.ndarray) -> np.ndarray:
        """One step with the given sorted, unique axon indices; int64 spikes per output."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def axon_indices(network: Network, inputs: StepInput) -> np.ndarray:
    """Sorted unique axon indices of a step's input; :class:`NetworkError` if it does not fit."""
    if inputs is None:
        return np.zeros(0, dtype=np.int64)
    array = np.asarray(inputs)
    if network.input_shape is not None and array.shape == tuple(network.input_shape):
        return np.flatnonzero(array.reshape(-1))
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        expected = f"a frame of shape {network.input_shape} or " if network.input_shape else ""
        raise NetworkError(f"step input must be {expected}a list of axon indices, got an array of shape "
                           f"{array.shape} and dtype {array.dtype}")
    ids = np.unique(array.astype(np.int64))
    if ids[0] < 0 or ids[-1] >= network.num_axons:
        raise NetworkError(f"axon index out of range [0, {network.num_axons}): {ids[0] if ids[0] < 0 else ids[-1]}")
    return ids


def run_sample(backend: Backend, frames: Iterable[StepInput], drain_steps: int = DRAIN_STEPS) -> np.ndarray:
    """The reference deployment of one sample: reset, one step per frame, ``drain_steps``
    empty steps; the output spike counts summed over all steps (predict with argmax)."""
    backend.reset()
    counts = np.zeros(backend.num_outputs, dtype=np.int64)
    for frame in frames:
        counts += backend.step(frame)
    for _ in range(drain_steps):
        counts += backend.step(None)
    return counts
