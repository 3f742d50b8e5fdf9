"""The layering of the README (data flows one way; Qt only in livegesture.gui), checked with
import-linter against the contracts in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter needs Python 3.11 (a CRI host runs 3.10)")
ROOT = Path(__file__).resolve().parents[1]


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    """import-linter's command line on this checkout's package (no cache written into the repository)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--config", str(config), "--no-cache"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_and_the_qt_boundary_hold():
    result = lint_imports(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_check_would_see_an_import_against_the_flow(tmp_path):
    """The same tool with the layers upside down: every real import breaks it (so the check above is live)."""
    config = tmp_path / "reversed.toml"
    config.write_text('[tool.importlinter]\nroot_package = "livegesture"\n\n[[tool.importlinter.contracts]]\n'
                      'name = "reversed"\ntype = "layers"\n'
                      'layers = ["livegesture.events", "livegesture.pipeline", "livegesture.gui"]\n')
    result = lint_imports(config)
    assert result.returncode == 1
    assert "livegesture.gui.window -> livegesture.pipeline" in result.stdout
    assert "0 kept, 1 broken" in result.stdout
