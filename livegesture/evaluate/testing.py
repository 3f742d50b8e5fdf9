"""A network whose outputs are forced, event streams with known answers, and a Ctrl-C on
cue: for tests of the scoring arithmetic (predictions are chosen, not learned).

:func:`forced_network` is one linear layer on the ``(2, 63, 63)`` frame: output ``k`` gets
``FORCED_WEIGHT`` (> the threshold) from the ON pixel (row 0, column ``k``) and nothing else.
On a DVS128, ON events at sensor pixel ``(2k, 0)`` light exactly that frame pixel: the 63x63
resize reads sensor columns ``floor(128/63 * (k + 0.5) - 0.5) = 2k`` and ``2k + 1`` into
column ``k`` for ``k < 15``. A CRI neuron fires the step after its input, so over a sample
or window output ``k`` spikes once for every frame that holds class ``k``'s pixel (given at
least one drain step), and never otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from livegesture.backends.network import IF_LEAK, LayeredNetwork, LinearLayer
from livegesture.events import make_events
from livegesture.integrate import INPUT_SHAPE
from livegesture.model.files import ModelInfo, save_model
from livegesture.sources.aedat3 import write_aedat3
from livegesture.sources.labels import NUM_CLASSES, GestureSegment, labels_path_for, write_labels

if TYPE_CHECKING:
    from livegesture.pipeline.settings import PipelineSettings

MAX_FORCED_CLASSES = 15
"""Classes whose pixel ``(2k, 0)`` maps to frame column ``k`` alone (module docstring)."""
FORCED_THRESHOLD = 50
FORCED_WEIGHT = 100
SILENT_PIXEL = (100, 100)
"""A DVS128 pixel no output listens to."""


def forced_network(num_classes: int = NUM_CLASSES) -> LayeredNetwork:
    """Output ``k`` fires after every frame that holds ON frame pixel (0, k) (module docstring)."""
    if not 1 <= num_classes <= MAX_FORCED_CLASSES:
        raise ValueError(f"1 to {MAX_FORCED_CLASSES} classes, got {num_classes}")
    channels, size, _ = INPUT_SHAPE
    weight = np.zeros((num_classes, channels, size, size), dtype=np.int16)
    for k in range(num_classes):
        weight[k, 1, 0, k] = FORCED_WEIGHT
    return LayeredNetwork((LinearLayer(weight.reshape(num_classes, -1)),), FORCED_THRESHOLD, IF_LEAK, INPUT_SHAPE)


def class_pixel(label: int | None) -> tuple[int, int]:
    """The DVS128 pixel ``(x, y)`` whose ON events make the forced network predict ``label``
    (None: a pixel that keeps it silent)."""
    if label is None:
        return SILENT_PIXEL
    if not 0 <= label < MAX_FORCED_CLASSES:
        raise ValueError(f"no forced pixel for class {label}: 0 to {MAX_FORCED_CLASSES - 1}")
    return 2 * label, 0


def forced_events(classes: Sequence[int | None], events_each: int, t0_us: int, dt_us: int) -> np.ndarray:
    """``events_each`` ON events at the pixel of each entry of ``classes`` in turn, one every
    ``dt_us`` from ``t0_us``."""
    pixels = np.repeat(np.array([class_pixel(c) for c in classes], dtype=np.uint16).reshape(-1, 2), events_each,
                       axis=0)
    t = t0_us + dt_us * np.arange(len(pixels), dtype=np.int64)
    return make_events(t, pixels[:, 0], pixels[:, 1], np.ones(len(pixels), dtype=np.uint8))


HAND_FRAMES: tuple[int | None, ...] = (None, None, 0, 0, 3, 3, 0, 0, 2, 2, None, None)
"""A worked stream: the class each frame of :data:`HAND_WINDOWS` shows (10 events, 1 ms apart:
event ``i`` at ``(i + 1)`` ms)."""
HAND_SEGMENTS = (GestureSegment(0, 30_000, 90_000), GestureSegment(2, 95_000, 105_000))
HAND_WINDOWS = {"events_per_frame": 10, "clear_every": 2, "drain_steps": 1, "smoothing": 1,
                "min_output_spikes": 1, "min_event_rate": 0.0, "noise_filter": False, "backend": "fast"}
"""Pipeline settings that cut the worked stream into windows of two frames, ending at 20, 40,
..., 120 ms; the forced network decides None, 0, 3, 0, 2, None there (the stream is slow, 1,000
events per second: no quiet-scene gate)."""


def hand_events() -> np.ndarray:
    """The events of the worked stream."""
    return forced_events(HAND_FRAMES, HAND_WINDOWS["events_per_frame"], 1_000, 1_000)


def write_hand_stream(folder: Path, extra_labels: Sequence[GestureSegment] = ()) -> tuple[Path, PipelineSettings]:
    """The worked stream as ``folder/stream.aedat`` with its labels (and ``extra_labels``), the
    forced network as ``folder/forced.npz``, and the settings that cut the stream as documented."""
    from livegesture.pipeline.settings import PipelineSettings

    model = save_model(folder / "forced.npz", forced_network(), ModelInfo(timesteps=4, drain_steps=1))
    recording = folder / "stream.aedat"
    write_aedat3(recording, hand_events())
    write_labels(labels_path_for(recording), [*HAND_SEGMENTS, *extra_labels])
    return recording, PipelineSettings(model=str(model), **HAND_WINDOWS)


class InterruptedAt:
    """A progress bar whose ``n``-th update is a Ctrl-C: an interruption at a known moment."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def update(self, _: int = 1) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
