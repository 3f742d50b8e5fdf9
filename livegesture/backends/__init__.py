"""Backends that run a CRI network step by step: ``fast`` (CPU, default without hardware),
``fast-sparse`` (event-driven CPU, any axons/connections network), ``simplesim`` (hs_api's
simulator, small nets) and ``cri`` (the hardware)."""

from __future__ import annotations

from livegesture.backends.base import DRAIN_STEPS, Backend, StepInput, run_sample
from livegesture.backends.network import CriGraph, LayeredNetwork, Network, NetworkError
from livegesture.integrate import TIMESTEPS

BACKENDS = ("fast", "fast-sparse", "simplesim", "cri")
BUILD_IMPORTS: dict[str, tuple[str, ...]] = {
    "fast": ("livegesture.backends.fast", "torch"),
    "fast-sparse": ("livegesture.backends.fast",),
    "simplesim": ("livegesture.backends.simplesim", "fxpmath", "hs_api._simple_sim"),
    "cri": ("livegesture.backends.cri",),
}
"""The modules :func:`make_backend` imports to build each backend: what a worker pool's fork server
imports once for its workers (:mod:`livegesture.evaluate.pool`), and only for the backend chosen."""


def make_backend(name: str, network: Network, **options: object) -> Backend:
    """A backend by name. ``fast`` runs a layered network as convolutions, ``fast-sparse``
    any network event by event; ``options`` go to the backend (``threads`` for fast,
    ``core_id`` for cri). Raises :class:`NetworkError` for ``fast`` on a network that is not
    layered (an hs_api pickle), naming ``fast-sparse``."""
    if name == "fast":
        from livegesture.backends.fast import StructuredFastBackend

        if not isinstance(network, LayeredNetwork):
            raise NetworkError("backend fast runs layered networks (livegesture .npz models); this one is an "
                               "axons/connections graph (an hs_api pickle): choose --backend fast-sparse")
        return StructuredFastBackend(network, **options)
    if name == "fast-sparse":
        from livegesture.backends.fast import SparseFastBackend

        return SparseFastBackend(network)
    if name == "simplesim":
        from livegesture.backends.simplesim import SimpleSimBackend

        return SimpleSimBackend(network)
    if name == "cri":
        from livegesture.backends.cri import CriBackend

        return CriBackend(network, **options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def default_backend_name() -> str:
    """``cri`` on a CRI host, else ``fast``."""
    from livegesture.backends.cri import hardware_available

    return "cri" if hardware_available() else "fast"


__all__ = ["BACKENDS", "BUILD_IMPORTS", "DRAIN_STEPS", "TIMESTEPS", "Backend", "CriGraph", "LayeredNetwork", "Network",
           "NetworkError", "StepInput", "default_backend_name", "make_backend", "run_sample"]
