"""The spiking CNN, built with SpikingJelly (``activation_based``, multi-step) so that its
neurons *are* CRI neurons.

Reference architecture (the deployed HiAER-Spike DVS Gesture net, "stride-2, 100 channels,
3-layer conv"): three bias-free 3x3 stride-2 convolutions of 100 channels without padding
on the ``(2, 63, 63)`` binarized frame (63 -> 31 -> 15 -> 7), then a bias-free linear
layer 4900 -> 11; an integrate-and-fire neuron after every layer. 235,700 weights,
123,511 neurons. There is no BatchNorm: folding one leaves a per-channel bias, which CRI
can only add through always-on axons that charge deep layers before the first spikes
reach them, so the trained net would not be the deployed one.

:class:`CriIFNode` is CRI's neuron: hard reset to 0, fire on ``v > threshold`` strictly
(SpikingJelly fires on ``v >= v_threshold``, so the integer threshold ``t`` is stored as
``t + 0.5``), leak ``v -= v >> leak`` and 35-bit saturation in integer units. The float
net (training) uses plain IF neurons with threshold 1.0; quantization switches it to
integer units (:mod:`livegesture.model.quantize`).

Delay: in a multi-step torch net a spike reaches the next layer within the same step,
on CRI one step later. By induction over layers, torch output at step ``t`` equals CRI
output at step ``t + depth`` (``depth`` = number of weight layers), given zero initial
potentials and a non-negative threshold. So CRI's counts over ``T + drain`` steps are
the torch counts over the first ``T + drain - depth`` steps of the input padded with zero
frames (:func:`output_counts`), and step by step (:func:`cri_step_outputs`).
"""

from __future__ import annotations

import numpy as np
import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from livegesture.backends.network import V_MAX, V_MIN, ConvLayer, LayeredNetwork, LinearLayer
from livegesture.model.config import NetConfig

FLOAT_THRESHOLD = 1.0
"""Threshold of the float network; the integer threshold is ``scale * FLOAT_THRESHOLD``."""
STRICT_MARGIN = 0.5
"""Added to an integer threshold so that SpikingJelly's ``v >= thr`` means CRI's ``v > thr``."""


class CriIFNode(neuron.SimpleBaseNode):
    """CRI's integrate-and-fire neuron (see the module docstring).

    With ``leak=None`` (float training) it is a plain IF neuron. With a ``leak`` it works in
    CRI's integer units: leak ``v -= floor(v / 2**leak)``, 35-bit saturation, threshold
    ``t + 0.5``; fed integer inputs, every value it computes is an integer, exact in float64
    and in float32 below 2**24. ``unit`` scales ``v - threshold`` for the surrogate gradient
    (integer units per float unit), so gradients match the float net's.
    """

    def __init__(self, v_threshold: float = FLOAT_THRESHOLD, leak: int | None = None, unit: float = 1.0,
                 surrogate_function: surrogate.SurrogateFunctionBase | None = None) -> None:
        super().__init__(v_threshold=v_threshold, v_reset=0.0,
                         surrogate_function=surrogate_function or surrogate.ATan(), detach_reset=True,
                         step_mode="m")
        self.leak = leak
        self.unit = unit

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v = self.v if isinstance(self.v, torch.Tensor) else torch.zeros_like(x)
        if self.leak is None:
            self.v = v + x
        else:
            self.v = torch.clamp(v - torch.floor(v.detach() / 2 ** self.leak) + x, V_MIN, V_MAX)

    def neuronal_fire(self) -> torch.Tensor:
        return self.surrogate_function((self.v - self.v_threshold) / self.unit)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, leak={self.leak}, unit={self.unit}"


class SpikingNet(nn.Module):
    """Bias-free convolutions then linear layers, each followed by a :class:`CriIFNode`.

    Input ``(T, B, C, H, W)`` spikes, output ``(T, B, classes)`` spikes (multi-step mode).
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        modules: list[nn.Module] = []
        channels = config.input_shape[0]
        for _ in range(config.conv_layers):
            modules += [layer.Conv2d(channels, config.channels, config.kernel_size, config.stride,
                                     config.padding, bias=False), CriIFNode()]
            channels = config.channels
        modules += [layer.Flatten(), layer.Linear(int(np.prod(config.feature_shape)), config.num_classes, bias=False),
                    CriIFNode()]
        self.body = nn.Sequential(*modules)
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    @property
    def depth(self) -> int:
        return self.config.depth

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self.body if isinstance(m, (nn.Conv2d, nn.Linear))]

    def neurons(self) -> list[CriIFNode]:
        return [m for m in self.body if isinstance(m, CriIFNode)]

    def set_integer_neurons(self, threshold: int, leak: int, unit: float) -> None:
        """Switch every neuron to CRI's integer dynamics with integer ``threshold``."""
        for node in self.neurons():
            node.v_threshold, node.leak, node.unit = threshold + STRICT_MARGIN, leak, unit


def config_of(network: LayeredNetwork) -> NetConfig:
    """The architecture of a layered network, if it has this module's form."""
    convs, linear = network.layers[:-1], network.layers[-1]
    if not isinstance(linear, LinearLayer) or not all(isinstance(c, ConvLayer) for c in convs):
        raise ValueError("expected convolutions followed by one linear layer")
    shapes = {(c.weight.shape[0], c.weight.shape[2], c.weight.shape[3], c.stride, c.padding) for c in convs}
    if len(shapes) > 1:
        raise ValueError("the convolutions differ in shape")
    channels, kernel, _, stride, padding = shapes.pop() if shapes else (network.input_shape[0], 1, 1, 1, 0)
    return NetConfig(channels=channels, conv_layers=len(convs), kernel_size=kernel, stride=stride,
                     padding=padding, num_classes=linear.weight.shape[0], input_shape=network.input_shape)


def integer_net(network: LayeredNetwork) -> SpikingNet:
    """The torch model with ``network``'s integer weights and CRI neurons, in float64
    (exact: every sum stays far below 2**53)."""
    net = SpikingNet(config_of(network)).double()
    with torch.no_grad():
        for module, layer_ in zip(net.weight_layers(), network.layers):
            module.weight.copy_(torch.from_numpy(layer_.weight.astype(np.float64)))
    net.set_integer_neurons(network.threshold, network.leak, unit=max(network.threshold, 1))
    return net.eval()


def counted_steps(timesteps: int, drain_steps: int, depth: int) -> int:
    """Torch steps whose outputs CRI counts over ``timesteps + drain_steps`` steps."""
    counted = timesteps + drain_steps - depth
    if counted < 1:
        raise ValueError(f"{timesteps} frames and {drain_steps} drain steps never reach the output "
                         f"of a {depth}-layer network")
    return counted


def run_padded(net: SpikingNet, frames: torch.Tensor, drain_steps: int) -> torch.Tensor:
    """Outputs ``(steps, B, classes)`` of the first ``counted_steps`` steps, frames ``(T, B, ...)``
    padded with zero frames as needed. Resets the net first."""
    timesteps = frames.shape[0]
    counted = counted_steps(timesteps, drain_steps, net.depth)
    if counted > timesteps:
        frames = torch.cat([frames, frames.new_zeros((counted - timesteps, *frames.shape[1:]))])
    functional.reset_net(net)
    return net(frames)[:counted]


def output_counts(net: SpikingNet, frames: torch.Tensor, drain_steps: int) -> torch.Tensor:
    """Output spike counts ``(B, classes)``: what CRI counts over ``T + drain_steps`` steps."""
    return run_padded(net, frames, drain_steps).sum(0)


def cri_step_outputs(net: SpikingNet, frames: torch.Tensor, drain_steps: int) -> np.ndarray:
    """Output spikes per CRI step, ``(T + drain_steps, classes)`` int64, of one sample
    ``(T, C, H, W)``: torch step ``t`` is CRI step ``t + depth``."""
    with torch.no_grad():
        spikes = run_padded(net, frames.unsqueeze(1), drain_steps)[:, 0]
    steps = np.zeros((frames.shape[0] + drain_steps, spikes.shape[-1]), dtype=np.int64)
    steps[net.depth:] = spikes.round().to(torch.int64).numpy()
    return steps
