"""The window in a real X server: tests/x11_window_checks.py run in Xvfb with Qt's xcb
platform (the rest of the suite uses the offscreen one). Skipped where Xvfb or xdotool is
not installed (``.ci/run`` installs them when it runs as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREEN = "1600x1000x24"
START_TIMEOUT_S = 20
RUN_TIMEOUT_S = 240


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A fresh Xvfb server on a free display (``-displayfd``: it picks the number); its DISPLAY."""
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.skip("Xvfb and xdotool are not installed (apt-get install xvfb xdotool)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.skip(f"Xvfb did not start (exit status {server.wait(START_TIMEOUT_S)})")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(START_TIMEOUT_S)


def test_the_window_in_a_real_x_server(xvfb):
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("WAYLAND_DISPLAY", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/x11_window_checks.py"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = result.stdout + result.stderr
    if "could not connect to display" in output or "xcb-cursor0" in output:
        pytest.fail(f"Qt's xcb platform cannot start (missing libraries? see .ci/run):\n{output[-3000:]}")
    assert result.returncode == 0, output[-6000:]
    assert "5 passed" in result.stdout, output[-3000:]
