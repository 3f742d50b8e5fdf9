"""The benchmark and maintenance scripts stay importable as the package changes under them
(each runs only under ``__main__``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])


def load_script(path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)  # every name it imports from livegesture must exist
    return module


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_imports(path, monkeypatch):
    module = load_script(path, monkeypatch)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


def test_bench_remote_refuses_no_repetitions(monkeypatch, capsys):
    module = load_script(ROOT / "benchmarks" / "bench_remote.py", monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench_remote.py", "--repeats", "0"])
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with pytest.raises(SystemExit) as exit_info:
        module.main()  # refused before it pins a core or starts a server
    assert exit_info.value.code == 2
    assert "--repeats must be at least 1, got 0" in capsys.readouterr().err
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity
