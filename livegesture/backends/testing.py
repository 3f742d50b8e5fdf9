"""Random CRI networks with lively spiking, for parity tests and benchmarks."""

from __future__ import annotations

import numpy as np

from livegesture.backends.network import IF_LEAK, ConvLayer, LayeredNetwork, LinearLayer


def random_network(rng: np.random.Generator, *, channels: int = 3, conv_layers: int = 2,
                   input_shape: tuple[int, int, int] = (2, 15, 15), num_classes: int = 5, kernel_size: int = 3,
                   stride: int = 2, padding: int = 0, threshold: int = 100, leak: int = IF_LEAK,
                   weights: tuple[int, int] = (-60, 80)) -> LayeredNetwork:
    """Convolutions then a linear layer, integer weights uniform in ``weights`` (biased positive
    by default so that spikes reach the outputs; negative potentials occur too)."""
    low, high = weights
    layers: list[ConvLayer | LinearLayer] = []
    shape = input_shape
    for _ in range(conv_layers):
        layer = ConvLayer(rng.integers(low, high, (channels, shape[0], kernel_size, kernel_size)), stride, padding)
        layers.append(layer)
        shape = layer.output_shape(shape)
    layers.append(LinearLayer(rng.integers(low, high, (num_classes, int(np.prod(shape))))))
    return LayeredNetwork(tuple(layers), threshold, leak, input_shape)


def random_frames(rng: np.random.Generator, shape: tuple[int, ...], timesteps: int, density: float) -> np.ndarray:
    """``(timesteps, *shape)`` uint8 binary frames with about ``density`` active pixels."""
    return (rng.random((timesteps, *shape)) < density).astype(np.uint8)
