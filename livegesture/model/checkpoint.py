"""Reading a ``livegesture train`` checkpoint (``.pt``) back into its torch net."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from livegesture.backends.network import IF_LEAK
from livegesture.model.config import TrainConfig
from livegesture.model.files import ModelFileError
from livegesture.model.net import SpikingNet
from livegesture.model.quantize import prepare_qat


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's net with its settings; ``scale`` is None before quantization-aware training."""

    net: SpikingNet
    config: TrainConfig
    scale: int | None
    epoch: int | None
    path: Path

    @property
    def phase(self) -> str:
        return "float" if self.scale is None else "qat"


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint on the CPU (``weights_only``: no code runs); :class:`ModelFileError` if
    the file is missing, not a checkpoint, or its weights do not fit its recorded architecture."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(state["config"])
    except Exception as err:  # torch and the config raise many types for a file that is not a checkpoint
        raise ModelFileError(path, f"not a livegesture training checkpoint ({type(err).__name__}: {err})") from None
    net = SpikingNet(config.net)
    scale = state.get("scale")
    if scale is not None:
        prepare_qat(net, scale, IF_LEAK)
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ModelFileError(path, f"weights do not fit the recorded architecture ({err})") from None
    return Checkpoint(net.eval(), config, scale, state.get("epoch"), path)
