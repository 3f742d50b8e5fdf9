"""The training reference, run as it is, for parity tests and benchmarks.

The deployed nets were trained on frames made by SpikingJelly
(``spikingjelly/datasets/utils.py``) and resized with
``torch.nn.functional.interpolate``. ``spikingjelly.datasets`` cannot be imported
here because it imports torchvision at import time (see shared NOTES), so
:func:`spikingjelly_function` compiles the named functions from the installed
SpikingJelly source file itself: the reference code runs verbatim, unmodified.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import struct
from functools import cache
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np


@cache
def _spikingjelly_namespace() -> dict:
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("spikingjelly is not installed (it is part of the training dependencies)")
    source_path = Path(spec.submodule_search_locations[0]) / "datasets" / "utils.py"
    tree = ast.parse(source_path.read_text(), filename=str(source_path))
    wanted = {
        "load_aedat_v3",
        "integrate_events_segment_to_frame",
        "cal_fixed_frames_number_segment_index",
        "integrate_events_by_fixed_frames_number",
    }
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    missing = wanted - {f.name for f in functions}
    if missing:
        raise ImportError(f"{source_path} lacks the reference functions {sorted(missing)}")
    namespace = {"np": np, "struct": struct, "math": math, "Path": Path,
                 "Optional": Optional, "Union": Union, "Callable": Callable}
    exec(compile(ast.Module(body=functions, type_ignores=[]), str(source_path), "exec"), namespace)
    return namespace


def spikingjelly_function(name: str) -> Callable:
    """One of SpikingJelly's dataset functions, e.g. ``"load_aedat_v3"``."""
    return _spikingjelly_namespace()[name]


def reference_frames(events: np.ndarray, frames: int, sensor_size: tuple[int, int],
                     out_size: int = 63) -> np.ndarray:
    """The reference transform: SpikingJelly's equal-count integration, bilinear resize, ``> 0``.

    Returns ``(frames, 2, out_size, out_size)`` float32 zeros and ones, exactly as the
    HiAER-Spike DVS Gesture example prepares network input.
    """
    import torch
    import torch.nn.functional as F

    width, height = sensor_size
    integrate = spikingjelly_function("integrate_events_by_fixed_frames_number")
    columns = {key: events[key] for key in ("t", "x", "y", "p")}
    counts = integrate(columns, "number", frames, height, width)
    resized = F.interpolate(torch.from_numpy(counts).float(), size=(out_size, out_size),
                            mode="bilinear", align_corners=False)
    return (resized > 0).float().numpy()
