"""Float net -> CRI integers: one global scale, quantization-aware fine-tuning, export.

CRI has one threshold for all neurons, so all layers share one scale ``s``: the float
threshold 1.0 (``FLOAT_THRESHOLD``) becomes the integer threshold ``s`` and a weight ``w`` becomes
``round(w * s)``. ``s`` is the largest integer that keeps every weight in int16 and every
neuron's positive and negative input sums below 2**24 (the fast backend's float32 products
then stay exact without splitting). IF neurons with reset to zero are scale-invariant,
so nothing else changes. Quantization-aware training (QAT) runs the float net with
weights rounded to the integer grid (straight-through gradients) and the neurons' exact
integer dynamics (strict threshold, leak, saturation), so the exported net is the net
that was fine-tuned.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from livegesture.backends.fast import FLOAT32_EXACT
from livegesture.backends.network import (
    IF_LEAK,
    V_MAX,
    WEIGHT_MAX,
    WEIGHT_MIN,
    ConvLayer,
    LayeredNetwork,
    LinearLayer,
    NetworkError,
)
from livegesture.model.net import SpikingNet


def choose_scale(net: SpikingNet) -> int:
    """The integer scale (= integer threshold) for ``net``'s current float weights."""
    limit = float(V_MAX)
    for module in net.weight_layers():
        w = module.weight.detach().double().reshape(module.weight.shape[0], -1)
        if not bool(torch.isfinite(w).all()):
            raise NetworkError("the weights are not finite (training diverged)")
        max_abs = float(w.abs().max())
        if max_abs > 0:
            limit = min(limit, WEIGHT_MAX / max_abs)
        max_sum = float(torch.maximum(w.clamp(min=0).sum(1), -w.clamp(max=0).sum(1)).max())
        if max_sum > 0:
            limit = min(limit, (FLOAT32_EXACT - 1) / max_sum)
    scale = math.floor(limit)
    if scale < 1:
        raise NetworkError("the weights are too large for int16 with an integer threshold of at least 1")
    return scale


class FakeQuantize(nn.Module):
    """Float weight -> its integer ``round(w * scale)`` in int16; gradient ``scale`` (straight-through)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        scaled = weight * self.scale
        return scaled + (torch.clamp(torch.round(scaled), WEIGHT_MIN, WEIGHT_MAX) - scaled).detach()


def prepare_qat(net: SpikingNet, scale: int, leak: int = IF_LEAK) -> SpikingNet:
    """Turn ``net`` (in place) into the integer net at ``scale``, trainable: weights are
    rounded to integers on the fly and neurons run CRI's integer dynamics."""
    for module in net.weight_layers():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        parametrize.register_parametrization(module, "weight", FakeQuantize(scale))
    net.set_integer_neurons(scale, leak, unit=scale)
    return net


def qat_scale(net: SpikingNet) -> int | None:
    """The scale of a net prepared by :func:`prepare_qat`, else None."""
    layers = net.weight_layers()
    if not parametrize.is_parametrized(layers[0], "weight"):
        return None
    return layers[0].parametrizations.weight[0].scale


def integer_weights(module: nn.Module, scale: int) -> np.ndarray:
    """A layer's weights on CRI's integer grid (int16)."""
    weight = module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight
    w = torch.clamp(torch.round(weight.detach().double() * scale), WEIGHT_MIN, WEIGHT_MAX)
    return w.cpu().numpy().astype(np.int16)


def export(net: SpikingNet, scale: int, leak: int = IF_LEAK) -> LayeredNetwork:
    """The CRI network of ``net`` at ``scale``: integer weights, threshold ``scale``."""
    config = net.config
    layers: list[ConvLayer | LinearLayer] = []
    for module in net.weight_layers():
        w = integer_weights(module, scale)
        if w.ndim == 4:
            layers.append(ConvLayer(w, config.stride, config.padding))
        else:
            layers.append(LinearLayer(w))
    return LayeredNetwork(tuple(layers), threshold=scale, leak=leak,
                          input_shape=config.input_shape)
