"""Generate the demo sessions shipped in recordings/ (synthetic DVS128 recordings with labels).

    .venv/bin/python scripts/make_recordings.py

Writes ``recordings/<name>.aedat4`` and ``recordings/<name>_labels.csv`` for each session
below. The people come from seed 1000, so they are not the users of a data set made with
another seed (the demo shows the net people it has not seen). aedat4 files from
dv-processing take about 8 bytes an event (LZ4), so the sessions are short (gestures of
2.5-3.5 s instead of the data sets' 3.5-5 s) and their subjects were picked among the less
busy ones (dark clothes, low contrast), to keep both under 6 MB.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from livegesture.synth.generate import SynthSettings
from livegesture.synth.gestures import TimingModel, parse_class
from livegesture.synth.writers import write_recording

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "recordings"
SEED = 1000
SETTINGS = SynthSettings(timing=TimingModel(gesture_seconds=(2.5, 3.5)))


@dataclass(frozen=True)
class Session:
    name: str
    user: int
    lighting: str
    gestures: tuple[str, ...]


SESSIONS = (
    Session("demo_session", 1, "natural",
            ("hand-clapping", "right-hand-wave", "left-arm-clockwise", "air-guitar", "other")),
    Session("demo_fluorescent", 9, "fluorescent",
            ("left-hand-wave", "right-arm-counter-clockwise", "arm-roll", "air-drums")),
)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    total = 0
    for session in SESSIONS:
        start = time.monotonic()
        written = write_recording(OUT / f"{session.name}.aedat4", [parse_class(g) for g in session.gestures],
                                  SEED, session.user, session.lighting, workers=2, settings=SETTINGS)
        size = written.path.stat().st_size
        total += size
        print(f"{written.path.relative_to(ROOT)}: {written.gestures} gestures, {written.events:,} events, "
              f"{written.duration_us / 1e6:.1f} s, {size / 1e6:.1f} MB ({time.monotonic() - start:.0f} s)")
    print(f"total {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
