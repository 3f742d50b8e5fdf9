"""The architecture and training settings (the reference deployment's constants live with
their stages: ``TIMESTEPS`` and ``INPUT_SHAPE`` in :mod:`livegesture.integrate`,
``DRAIN_STEPS`` in :mod:`livegesture.backends.base`).

No torch here: the command line reads these defaults without importing it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from livegesture.backends.base import DRAIN_STEPS
from livegesture.integrate import INPUT_SHAPE, TIMESTEPS
from livegesture.sources.labels import NUM_CLASSES

MIN_OUTPUT_SPIKES = 4
"""Output spikes below which an idle training sample counts as silent ("no gesture"); the live
pipeline's default ``min_output_spikes`` is tuned from it."""
LOSSES = ("ce", "mse")


@dataclass(frozen=True)
class LiveWindow:
    """The live windows a model was trained on (recorded in its file): the live pipeline, ``eval``
    and the window take ``events_per_frame``, ``clear_every`` and ``drain_steps`` from it as
    defaults and warn when a setting lies far outside ``events_per_frame_range``."""

    events_per_frame_range: tuple[int, int]
    events_per_frame: int
    """The default: where the model was best on its validation sessions."""
    clear_every: int = TIMESTEPS
    drain_steps: int = DRAIN_STEPS

    def __post_init__(self) -> None:
        low, high = (int(n) for n in self.events_per_frame_range)
        object.__setattr__(self, "events_per_frame_range", (low, high))
        if not (1 <= low <= high and self.events_per_frame >= 1 and self.clear_every >= 1 and self.drain_steps >= 0):
            raise ValueError(f"invalid live window {self}")

    def far_outside(self, events_per_frame: int, factor: float = 1.5) -> bool:
        """Whether ``events_per_frame`` lies more than ``factor`` beyond the trained range."""
        low, high = self.events_per_frame_range
        return not low / factor <= events_per_frame <= high * factor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"events_per_frame_range": list(self.events_per_frame_range)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveWindow:
        return cls(tuple(data["events_per_frame_range"]), int(data["events_per_frame"]),
                   int(data.get("clear_every", TIMESTEPS)), int(data.get("drain_steps", DRAIN_STEPS)))


@dataclass(frozen=True)
class NetConfig:
    """The architecture: ``conv_layers`` bias-free convolutions of ``channels``, then one
    bias-free linear layer to ``num_classes``; an IF neuron after each. The defaults are the
    deployed HiAER-Spike DVS Gesture net ("stride-2, 100 channels, 3-layer conv")."""

    channels: int = 100
    conv_layers: int = 3
    kernel_size: int = 3
    stride: int = 2
    padding: int = 0
    num_classes: int = NUM_CLASSES
    input_shape: tuple[int, int, int] = INPUT_SHAPE

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))
        if self.channels < 1 or self.conv_layers < 0 or self.kernel_size < 1 or self.stride < 1 or self.num_classes < 1:
            raise ValueError(f"invalid architecture {self}")
        if self.feature_shape[1] < 1:
            raise ValueError(f"{self.conv_layers} convolutions do not fit a {self.input_shape} input")

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """Shape of the last convolution's output (the linear layer's input)."""
        channels, size, _ = self.input_shape
        for _ in range(self.conv_layers):
            channels = self.channels
            size = (size + 2 * self.padding - self.kernel_size) // self.stride + 1
        return channels, size, size

    @property
    def depth(self) -> int:
        """Weight layers: CRI's output follows an input by this many steps."""
        return self.conv_layers + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def __str__(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of both training phases (float, then quantization-aware)."""

    epochs: int = 30
    qat_epochs: int = 5
    batch_size: int = 16
    lr: float = 5e-3
    qat_lr: float = 5e-4
    weight_decay: float = 0.0
    loss: str = "mse"
    """"ce": cross-entropy of the output spike counts; "mse": squared error of the rates."""
    timesteps: int = TIMESTEPS
    drain_steps: int = DRAIN_STEPS
    max_shift: int = 5
    """Random translation of a whole sample, in pixels of the 63x63 frame."""
    drop_rate: float = 0.1
    """Fraction of active pixels dropped at random (event thinning)."""
    mirror: bool = True
    """Mirror half the samples left-right, with the class a mirror view shows."""
    val_fraction: float = 0.1
    """Part of the training samples held out to pick the best epoch."""
    seed: int = 0
    device: str = "auto"
    class_weights: tuple[float, ...] = ()
    """Weight of each class's samples in the loss (by class index; empty: all 1); idle windows weigh 1."""
    net: NetConfig = field(default_factory=NetConfig)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        if self.class_weights and (len(self.class_weights) != self.net.num_classes
                                   or not all(w > 0 for w in self.class_weights)):
            raise ValueError(f"class weights must be {self.net.num_classes} positive numbers, got {self.class_weights}")
        if self.mirror and self.net.num_classes != NUM_CLASSES:
            raise ValueError(f"mirroring swaps DVS Gesture's {NUM_CLASSES} classes; a {self.net.num_classes}-class "
                             "net must train without it")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"net": self.net.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "net"}
        return cls(**known, net=NetConfig.from_dict(data["net"]))

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with the given fields (``net_*``: architecture fields) replaced; None keeps."""
        net = {k[4:]: v for k, v in changes.items() if k.startswith("net_") and v is not None}
        top = {k: v for k, v in changes.items() if not k.startswith("net_") and v is not None}
        return replace(self, **top, net=replace(self.net, **net))
