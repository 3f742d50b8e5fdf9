"""Shared test set-up."""

from __future__ import annotations

import signal

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal sends it, for the programs the tests start and interrupt: a test run
    started in the background by a non-interactive shell (``make test &``) inherits SIGINT
    ignored, and would hand that on to them (exec keeps an ignored signal ignored)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The nets in tests are tiny: they gain nothing from threads, and on a busy CPU torch's
    thread pool makes them 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
