"""From a trained model to CRI's format, and the proof that the conversion is exact.

Sources: a training checkpoint (``.pt`` from ``livegesture train``; a float checkpoint is
quantized after training, a QAT checkpoint keeps its scale), a livegesture model
(``.npz``) or an hs_api pickle (``.pkl``). Targets: a livegesture model (``.npz``) or an
hs_api pickle for ``CRI_network`` (``.pkl``: axons, connections, outputs, config, leak).
:func:`verify` runs random frames through every backend that can hold the network and
through the torch model with integer weights, and reports whether all agree step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.backends import make_backend
from livegesture.backends.network import IF_LEAK, LayeredNetwork, Network, NetworkError
from livegesture.backends.simplesim import MAX_DENSE_ENTRIES
from livegesture.backends.testing import random_frames
from livegesture.model.files import (
    MODEL_SUFFIX,
    PICKLE_SUFFIXES,
    CriModel,
    ModelFileError,
    ModelInfo,
    load_model,
    save_hs_api_pickle,
    save_model,
)

CHECKPOINT_SUFFIX = ".pt"
VERIFY_DENSITY = 0.1
"""Active pixels per verification frame (DVS Gesture frames hold a few percent to ~15 %)."""


def checkpoint_model(path: Path) -> CriModel:
    """A ``livegesture train`` checkpoint converted to a CRI network."""
    from livegesture.model.checkpoint import load_checkpoint
    from livegesture.model.quantize import choose_scale, export

    checkpoint = load_checkpoint(path)
    config = checkpoint.config
    scale = checkpoint.scale if checkpoint.scale is not None else choose_scale(checkpoint.net)
    info = ModelInfo(timesteps=config.timesteps, drain_steps=config.drain_steps, scale=scale,
                     training={"source": f"checkpoint {path.name}", "phase": checkpoint.phase,
                               "epoch": checkpoint.epoch, "config": config.to_dict()})
    try:
        network = export(checkpoint.net, scale, IF_LEAK)
    except NetworkError as err:
        raise ModelFileError(path, str(err)) from None
    return CriModel(network, info, path)


def load_source(path: str | Path, *, trust_pickle: bool = False, threshold: int | None = None,
                leak: int | None = None) -> CriModel:
    """Any convertible source (see the module docstring)."""
    path = Path(path)
    if path.suffix.lower() == CHECKPOINT_SUFFIX:
        if not path.is_file():
            raise ModelFileError(path, "no such checkpoint")
        return checkpoint_model(path)
    return load_model(path, trust_pickle=trust_pickle, threshold=threshold, leak=leak)


def write(model: CriModel, path: str | Path) -> Path:
    """Write ``model`` as ``.npz`` (layered networks) or as an hs_api ``.pkl``, which is for CRI:
    a network beyond one CRI core's limits is refused (:class:`HardwareLimitError`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == MODEL_SUFFIX:
        if not isinstance(model.network, LayeredNetwork):
            raise ModelFileError(path, "only layered networks (trained by livegesture) can be written as .npz; "
                                       "write an hs_api .pkl instead")
        return save_model(path, model.network, model.info)
    if suffix in PICKLE_SUFFIXES:
        from livegesture.backends.cri import HardwareLimitError, check_hardware_limits

        try:
            check_hardware_limits(model.network)
        except HardwareLimitError as err:
            raise ModelFileError(path, f"not written, the network does not fit CRI: {err}") from None
        return save_hs_api_pickle(path, model.network)
    raise ModelFileError(path, f"unknown output type: use {MODEL_SUFFIX} or {PICKLE_SUFFIXES[0]}")


def describe(network: Network) -> list[str]:
    """Human-readable facts about a network."""
    graph = network.graph
    fan_out = np.diff(graph.axon_weights.indptr).max(initial=0), np.diff(graph.neuron_weights.indptr).max(initial=0)
    lines = [f"axons {graph.num_axons:,}, neurons {graph.num_neurons:,}, outputs {graph.num_outputs}, "
             f"synapses {graph.num_synapses:,} (max fan-out: axon {fan_out[0]:,}, neuron {fan_out[1]:,})",
             f"threshold {network.threshold:,} (fire on V > threshold), leak shift {network.leak}"]
    if isinstance(network, LayeredNetwork):
        lines.append("layers: " + " -> ".join("x".join(map(str, s)) for s in (network.input_shape, *network.layer_shapes))
                     + f" ({network.depth} steps from input to output)")
    return lines


@dataclass(frozen=True)
class Verification:
    """Which engines ran and whether all gave the same output spikes at every step."""

    engines: tuple[str, ...]
    samples: int
    steps: int
    output_spikes: int
    identical: bool


def verify(model: CriModel, samples: int = 3, seed: int = 0) -> Verification:
    """Random frames through every engine that holds the network; step-by-step agreement."""
    network, info = model.network, model.info
    rng = np.random.default_rng(seed)
    shape = network.input_shape
    inputs = [random_frames(rng, shape, info.timesteps, VERIFY_DENSITY) if shape is not None else
              [rng.choice(network.num_axons, int(network.num_axons * VERIFY_DENSITY), replace=False)
               for _ in range(info.timesteps)] for _ in range(samples)]
    engines = ["fast", "fast-sparse"] if isinstance(network, LayeredNetwork) else ["fast-sparse"]
    graph = network.graph
    if (graph.num_axons + graph.num_neurons) * graph.num_neurons <= MAX_DENSE_ENTRIES:
        engines.append("simplesim")
    results = {name: _steps(make_backend(name, network), inputs, info.drain_steps) for name in engines}
    if isinstance(network, LayeredNetwork):
        results["torch (integer weights)"] = _torch_steps(network, inputs, info.drain_steps)
    reference = next(iter(results.values()))
    identical = all(np.array_equal(r, reference) for r in results.values())
    return Verification(tuple(results), samples, reference.shape[1], int(reference.sum()), identical)


def _steps(backend, inputs: list, drain_steps: int) -> np.ndarray:
    out = []
    for sample in inputs:
        backend.reset()
        out.append([backend.step(f) for f in sample] + [backend.step(None) for _ in range(drain_steps)])
    return np.array(out)


def _torch_steps(network: LayeredNetwork, inputs: list, drain_steps: int) -> np.ndarray:
    import torch

    from livegesture.model.net import cri_step_outputs, integer_net

    net = integer_net(network)
    return np.array([cri_step_outputs(net, torch.from_numpy(np.asarray(s)).double(), drain_steps) for s in inputs])

