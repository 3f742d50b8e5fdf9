"""Time per timestep of each software backend, in one run.

1. The deployed net (the shipped model in assets/ when present, else the reference
   architecture with random integer weights): ``fast`` (structured) and ``fast-sparse``.
   Target: fast <= 2 ms per timestep on a 2-core machine. Then ``fast`` running the same
   samples together (``run_samples``, as the per-sample evaluation and training's integer
   check do: :data:`~livegesture.backends.fast.INSTANCES_PER_BATCH` instances per batch of
   matrix products) against one at a time, alternated, best of ``BATCH_ROUNDS``.
2. The largest reference-family net hs_api's simpleSim can hold (4 channels: its dense
   matrices have (axons + neurons) x neurons entries): simplesim against both fast
   engines. Target: fast >= 100x simpleSim.

Each engine runs the reference deployment (reset, 10 frames, 6 drain steps) on the same
random frames; the output spike counts are checked to be identical across engines.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from livegesture.backends import DRAIN_STEPS, TIMESTEPS, make_backend, run_sample
from livegesture.backends.fast import INSTANCES_PER_BATCH
from livegesture.backends.network import INPUT_SHAPE
from livegesture.backends.simplesim import MAX_DENSE_ENTRIES
from livegesture.backends.testing import random_frames, random_network
from livegesture.model.files import DEFAULT_MODEL, load_model

DENSITY = 0.2           # active pixels per frame: the synthetic DVS Gesture frames average 20 %
SAMPLES = {"fast": 30, "fast-sparse": 5, "simplesim": 2}
TARGET_MS, TARGET_RATIO = 2.0, 100.0
BATCH_ROUNDS = 5


def deployed_network():
    if DEFAULT_MODEL.is_file():
        return load_model(DEFAULT_MODEL).network, f"shipped model {DEFAULT_MODEL.name}"
    return (random_network(np.random.default_rng(0), channels=100, conv_layers=3, input_shape=INPUT_SHAPE,
                           num_classes=11, threshold=150, weights=(-25, 30)),
            "reference architecture, random weights")


def largest_simplesim_network():
    for channels in range(16, 0, -1):
        network = random_network(np.random.default_rng(1), channels=channels, conv_layers=3, input_shape=INPUT_SHAPE,
                                 num_classes=11, threshold=60, weights=(-25, 30))
        if (network.num_axons + network.num_neurons) * network.num_neurons <= MAX_DENSE_ENTRIES:
            return network
    raise RuntimeError("no reference-family net fits simpleSim")


def time_engine(name: str, network, samples: list[np.ndarray]) -> tuple[float, float, list[np.ndarray]]:
    """(build seconds, ms per timestep, counts per sample)."""
    started = time.perf_counter()
    backend = make_backend(name, network)
    build = time.perf_counter() - started
    run_sample(backend, samples[0][:2], 1)  # warm-up
    counts = []
    started = time.perf_counter()
    for frames in samples:
        counts.append(run_sample(backend, frames, DRAIN_STEPS))
    elapsed = time.perf_counter() - started
    return build, 1e3 * elapsed / (len(samples) * (TIMESTEPS + DRAIN_STEPS)), counts


def run(title: str, network, engines: tuple[str, ...]) -> dict[str, float]:
    print(f"== {title}: {network.num_axons:,} axons, {network.num_neurons:,} neurons, "
          f"{network.num_synapses:,} synapses, threshold {network.threshold}")
    rng = np.random.default_rng(2)
    samples = [random_frames(rng, INPUT_SHAPE, TIMESTEPS, DENSITY) for _ in range(max(SAMPLES.values()))]
    per_step, reference = {}, None
    for name in engines:
        build, ms, counts = time_engine(name, network, samples[:SAMPLES[name]])
        same = reference is None or all(np.array_equal(a, b) for a, b in zip(counts, reference))
        reference = reference or counts
        per_step[name] = ms
        print(f"  {name:12s} {ms:9.3f} ms/step   (build {build:6.2f} s, {len(counts)} samples, "
              f"{sum(int(c.sum()) for c in counts)} output spikes, {'identical' if same else 'DIFFERENT'} counts)")
        if not same:
            raise SystemExit(f"{name} disagrees with {engines[0]}")
    return per_step


def batched_vs_one_at_a_time(network) -> None:
    """ms per timestep of each sample: ``run_samples`` against ``run_sample`` one by one, alternated."""
    samples = random_frames(np.random.default_rng(3), (TIMESTEPS, *INPUT_SHAPE), SAMPLES["fast"], DENSITY)
    backend = make_backend("fast", network)
    steps = len(samples) * (TIMESTEPS + DRAIN_STEPS)
    best = {"one at a time": float("inf"), "together": float("inf")}
    for _ in range(BATCH_ROUNDS):
        started = time.perf_counter()
        single = np.array([run_sample(backend, frames, DRAIN_STEPS) for frames in samples])
        best["one at a time"] = min(best["one at a time"], 1e3 * (time.perf_counter() - started) / steps)
        started = time.perf_counter()
        together = backend.run_samples(samples, DRAIN_STEPS)
        best["together"] = min(best["together"], 1e3 * (time.perf_counter() - started) / steps)
        if not np.array_equal(single, together):
            raise SystemExit("run_samples disagrees with run_sample")
    print(f"  fast, {INSTANCES_PER_BATCH} samples stepped together: {best['together']:.3f} ms per sample's step against "
          f"{best['one at a time']:.3f} one at a time: {best['one at a time'] / best['together']:.2f}x "
          f"(best of {BATCH_ROUNDS} alternated, identical counts)")


def main() -> None:
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; frames with {DENSITY:.0%} active pixels")
    network, origin = deployed_network()
    deployed = run(f"deployed net ({origin})", network, ("fast", "fast-sparse"))
    batched_vs_one_at_a_time(network)
    small = run("largest reference-family net simpleSim holds", largest_simplesim_network(),
                ("fast", "fast-sparse", "simplesim"))
    ratio = small["simplesim"] / small["fast"]
    print(f"fast: {deployed['fast']:.3f} ms/step on the deployed net (target <= {TARGET_MS} ms): "
          f"{'OK' if deployed['fast'] <= TARGET_MS else 'MISSED'}")
    print(f"fast vs simpleSim: {ratio:,.0f}x (fast-sparse {small['simplesim'] / small['fast-sparse']:,.0f}x) "
          f"(target >= {TARGET_RATIO:.0f}x): {'OK' if ratio >= TARGET_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
