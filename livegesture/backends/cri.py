"""The CRI hardware through hs_api (``target="CRI"``) and hs_bridge.

Each sample starts with ``hs_bridge.FPGA_Execution.fpga_controller.clear(neurons, False,
core)`` (membrane clear, as the HiAER-Spike DVS Gesture example does), then one
``CRI_network.step(axon_keys)`` per frame; each step returns ``(output keys that fired,
clock cycles, HBM accesses)``, which ``stats`` accumulates.

Every hs_api generation is built with the neuron parameters that make the hardware compute
what the fast backend computes (:mod:`~livegesture.backends.hsapi`); an hs_api / hs_bridge
pair that cannot work together (hs_api 0.1.7 calls ``network(..., shift=)``, which hs_bridge
0.10.6 lacks) is reported before anything is loaded. Known difference of generations A and B:
hs_bridge 0.10.6 programs neuron model 3 (non-leaky I&F) whatever ``leak`` hs_api passes, so
a negative potential stays put on hardware, whereas the simulators raise it by 1 per step
(``V -= V >> leak``); spikes differ only if such a creep brings a neuron above threshold.

A CRI host is recognised by the device files of the ``adxdma`` driver hs_bridge drives the
FPGA through (:data:`DEVICE_GLOB`), or told by :data:`HARDWARE_ENV`. Only one process may
drive the FPGA (one DMA channel pair: a second process deadlocks both; hiaer-spike-hardware
``docs/08_lessons_learned.md``), so the backend holds :func:`hardware_lock` while it lives.
"""

from __future__ import annotations

import glob
import importlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.backends.base import Backend
from livegesture.backends.hsapi import NEEDS_HS_BRIDGE, HsApiError, cri_network
from livegesture.backends.network import Network, NetworkError

CONTROLLER = "hs_bridge.FPGA_Execution.fpga_controller"
DEVICE_GLOB = "/dev/adxdma*"
"""Device files of the FPGA's PCIe DMA driver (``modprobe adxdma`` creates ``/dev/adxdma0*``)."""
HARDWARE_ENV = "LIVEGESTURE_CRI_HARDWARE"
"""``1`` / ``0`` overrides the device-file detection (e.g. a host whose devices are elsewhere)."""
LOCK_ENV = "LIVEGESTURE_CRI_LOCK"
"""Path of the lock file that keeps a second process off the FPGA (default :func:`lock_path`)."""

NEURONS_PER_CORE = 131_072
"""17-bit neuron address per core (hiaer-spike-hardware ``docs/HiAER_Software_Reference.md`` §1)."""
AXONS_PER_CORE = 8_192
"""Entries of a core's axon BRAM (same reference, §1)."""
SYNAPSES_PER_ROW = 8
"""32-bit synapse entries in one 256-bit HBM row (§5.4)."""
MAX_SYNAPSE_ROWS = 511
"""A source's pointer holds its synapse-row count in 9 bits (§5.2, §5.3)."""


class HardwareLimitError(NetworkError):
    """A network that cannot be loaded onto one CRI core; the message names the limit."""


def hardware_available() -> bool:
    """True on a CRI host: :data:`HARDWARE_ENV` when set, else whether :data:`DEVICE_GLOB` matches."""
    override = os.environ.get(HARDWARE_ENV, "").strip()
    if override:
        return override.lower() not in ("0", "false", "no", "off")
    return bool(glob.glob(DEVICE_GLOB))


def check_hardware_limits(network: Network) -> None:
    """:class:`HardwareLimitError` naming the first limit of one core that ``network`` breaks
    (weights are already signed 16-bit by construction)."""
    graph = network.graph
    if graph.num_neurons > NEURONS_PER_CORE:
        raise HardwareLimitError(f"{graph.num_neurons:,} neurons exceed the {NEURONS_PER_CORE:,} neurons of a CRI core")
    if graph.num_axons > AXONS_PER_CORE:
        raise HardwareLimitError(f"{graph.num_axons:,} axons exceed the {AXONS_PER_CORE:,} axons of a CRI core")
    for what, matrix, keys in (("axon", graph.axon_weights, graph.axon_keys),
                               ("neuron", graph.neuron_weights, graph.neuron_keys)):
        fan_out = np.diff(matrix.indptr)
        if fan_out.size and -(-int(fan_out.max()) // SYNAPSES_PER_ROW) > MAX_SYNAPSE_ROWS:
            worst = int(np.argmax(fan_out))
            raise HardwareLimitError(f"{what} {keys[worst]!r} has {int(fan_out[worst]):,} synapses: more than "
                                     f"{MAX_SYNAPSE_ROWS} synapse rows of {SYNAPSES_PER_ROW} "
                                     f"({MAX_SYNAPSE_ROWS * SYNAPSES_PER_ROW:,} synapses) per source")


def lock_path() -> Path:
    """:data:`LOCK_ENV`, else ``livegesture-cri.lock`` in the system's temporary folder."""
    return Path(os.environ.get(LOCK_ENV) or Path(tempfile.gettempdir()) / "livegesture-cri.lock")


@dataclass
class _ProcessLock:
    """The file lock held by this process, shared by its backends (staggered mode runs two)."""

    holders: int = 0
    file: object = None


_LOCK = _ProcessLock()
_LOCK_GUARD = threading.Lock()


def acquire_hardware() -> None:
    """Take the one-process hardware lock (an ``flock`` on :func:`lock_path`); :class:`HsApiError`
    naming the holder when another process has it. Backends of this process share it."""
    import fcntl

    with _LOCK_GUARD:
        if _LOCK.holders == 0:
            path = lock_path()
            handle = open(path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise HsApiError(f"the CRI hardware is in use by process {holder} (lock {path}); only one "
                                 "process can drive the FPGA: stop it, or connect to its `livegesture serve` "
                                 "with --remote") from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            _LOCK.file = handle
        _LOCK.holders += 1


def release_hardware() -> None:
    """Give back one hold of the lock; the last one unlocks the file."""
    with _LOCK_GUARD:
        if _LOCK.holders == 0:
            return
        _LOCK.holders -= 1
        if _LOCK.holders == 0:
            _LOCK.file.close()  # closing the file releases the flock
            _LOCK.file = None


class CriBackend(Backend):
    """The network loaded onto CRI hardware (core ``core_id``)."""

    name = "cri"

    def __init__(self, network: Network, core_id: int = 0) -> None:
        super().__init__(network)
        check_hardware_limits(network)
        try:
            self._controller = importlib.import_module(CONTROLLER)
        except ImportError as err:
            raise HsApiError(f"{NEEDS_HS_BRIDGE} ({CONTROLLER}: {err})") from err
        acquire_hardware()
        self._holds_lock = True
        graph = network.graph
        self.core_id = core_id
        try:
            self.cri_network = cri_network(graph, "CRI", coreID=core_id)
        except BaseException:
            self.close()
            raise
        self._axon_keys = graph.axon_keys
        self._output_position = {graph.neuron_keys[i]: n for n, i in enumerate(graph.outputs)}
        self._stats.update(clears=0, clock_cycles=0, hbm_accesses=0, unexpected_spikes=0)

    def _reset(self) -> None:
        self._controller.clear(self.network.num_neurons, False, self.core_id)
        self._stats["clears"] += 1

    def _step(self, axons: np.ndarray) -> np.ndarray:
        keys = [self._axon_keys[i] for i in axons]
        fired, clock_cycles, hbm_accesses = self.cri_network.step(keys)
        spikes = np.zeros(self.num_outputs, dtype=np.int64)
        for key in fired:
            position = self._output_position.get(key)
            if position is None:
                self._stats["unexpected_spikes"] += 1
            else:
                spikes[position] += 1
        self._stats["clock_cycles"] += int(clock_cycles or 0)
        self._stats["hbm_accesses"] += int(hbm_accesses or 0)
        return spikes

    def close(self) -> None:
        if getattr(self, "_holds_lock", False):
            self._holds_lock = False
            release_hardware()
