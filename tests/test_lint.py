"""Python 3.10 compatibility (what a CRI host runs) and pyflakes' errors, checked by ruff with the
project's rules (``[tool.ruff]`` in pyproject.toml), and, where one is installed, by compiling
the package with a real Python 3.10."""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml")]


def test_the_project_passes_ruff():
    result = subprocess.run([*RUFF, str(ROOT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_catch_what_python_310_lacks(tmp_path):
    snippet = tmp_path / "new.py"
    snippet.write_text("import tomllib\nfrom typing import Self\n\ntry:\n    pass\nexcept* ValueError:\n    pass\n"
                       "print(tomllib, Self)\n")
    result = subprocess.run([*RUFF, str(snippet)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Cannot use `except*` on Python 3.10" in result.stdout
    assert "`tomllib` is banned" in result.stdout and "`typing.Self` is banned" in result.stdout


def _python310() -> str | None:
    candidates = [shutil.which("python3.10"), *sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10*/bin/python3.10")))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.startswith("Python 3.10"):
            return candidate
    return None


def test_the_package_compiles_under_python_310(tmp_path):
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    result = subprocess.run([python, "-m", "compileall", "-q", "-d", "livegesture", str(ROOT / "livegesture")],
                            capture_output=True, text=True, timeout=120, env={"PYTHONPYCACHEPREFIX": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
