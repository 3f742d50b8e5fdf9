"""The command line and the project's promises about setup."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livegesture.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def subcommands() -> list[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(action.choices)


def test_python_dash_m_and_every_subcommand_have_help():
    out = subprocess.run([sys.executable, "-m", "livegesture", "--help"], capture_output=True, text=True, check=True)
    for name in subcommands():
        assert name in out.stdout
        sub = subprocess.run([sys.executable, "-m", "livegesture", name, "--help"],
                             capture_output=True, text=True)
        assert sub.returncode == 0 and "usage: livegesture" in sub.stdout, name


def test_bad_recording_is_a_one_line_error_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nothing.txt"
    assert main(["info", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"livegesture: error: {missing}: unknown recording type") and "Traceback" not in err


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make \w+)\s+#", readme, flags=re.MULTILINE)
    assert commands[:2] == ["make demo", "make test"]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci_lines[-1] == "make test"
    # before it, only the X server packages the real-X window test needs, installed when root
    install = ci_lines[:-1]
    assert install[0].startswith("X11_PACKAGES=(") and install[-1] == "fi"
    assert any(line.startswith('if [ "$(id -u)" = 0 ]') for line in install)
    assert not any(word in line for line in install for word in ("make", "pytest", "python"))


def python310() -> str | None:
    """A working Python 3.10 interpreter, if this machine has one (PATH or pyenv)."""
    candidates = [shutil.which("python3.10"), *sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "--version"], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def test_package_compiles_on_python_3_10(tmp_path):
    """A CRI host runs Python 3.10 (hs_bridge's build): no 3.11-only syntax in the package."""
    interpreter = python310()
    if interpreter is None:
        pytest.skip("no Python 3.10 on this machine")
    result = subprocess.run([interpreter, "-m", "compileall", "-q", str(ROOT / "livegesture")],
                            capture_output=True, text=True, env={"PYTHONPYCACHEPREFIX": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
