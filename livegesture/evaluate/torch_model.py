"""The torch model of a training checkpoint, run as the deployed sample loop counts.

``livegesture train`` keeps ``best-float.pt`` (the float net) and ``best-qat.pt`` (the
quantization-aware one) in its output folder. Evaluating the float net on the same samples
as the converted model shows what the conversion to CRI's integers costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from livegesture.model.checkpoint import load_checkpoint
from livegesture.model.net import SpikingNet, output_counts


@dataclass(frozen=True)
class TorchModel:
    """A checkpoint's net: ``phase`` "float" (before quantization) or "qat" (integer units)."""

    net: SpikingNet
    phase: str
    path: Path
    timesteps: int
    drain_steps: int

    def counts(self, frames: np.ndarray) -> np.ndarray:
        """Output spike counts of one sample ``(T, C, H, W)``: what CRI counts over T + drain steps."""
        with torch.no_grad():
            batch = torch.from_numpy(frames).to(torch.float32).unsqueeze(1)
            return output_counts(self.net, batch, self.drain_steps)[0].round().to(torch.int64).numpy()


def load_torch_model(path: str | Path) -> TorchModel:
    """Load a ``livegesture train`` checkpoint (``.pt``); :class:`ModelFileError` if it is not one."""
    checkpoint = load_checkpoint(path)
    config = checkpoint.config
    return TorchModel(checkpoint.net, checkpoint.phase, checkpoint.path, config.timesteps, config.drain_steps)
